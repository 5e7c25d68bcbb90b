"""The ways in: HTTP (functions-framework, API Gateway), one queue intake, the command line."""
