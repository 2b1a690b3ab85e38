"""The AWS stack's account values used by the stack tests (not a test module)."""

AWS_ENV = {
    "RS_SAGEMAKER_ROLE": "arn:aws:iam::123456789012:role/rscale-sagemaker",
    "RS_S3_BUCKET": "rscale-test-bucket",
    "RS_ECR_URI": "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
    "AWS_REGION": "eu-west-1",
}
