"""The AWS adapters: the DynamoDB edge, the store, the cap guard, bulk import, SQS, provisioning."""
