"""The HTTP function on AWS Lambda behind API Gateway (HTTP API, payload 2.0): no Flask."""

from smscode.entrypoints.apigw import lambda_handler

__all__ = ["lambda_handler"]
