"""The delivery function on AWS Lambda: SQS batches with ReportBatchItemFailures."""

from smscode.entrypoints.sqs import lambda_handler

__all__ = ["lambda_handler"]
