"""What talks to S3: the one seam to the AWS CLI (`sh`), its watchdog, the profile's `s3`
settings, listings, and the access and credential checks."""
