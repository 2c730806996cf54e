package objects

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Ping checks that the bucket exists and the credentials can reach it, for
// health checks.
func (s *Bucket) Ping(ctx context.Context) error {
	if err := s.headBucket(ctx); err != nil {
		return fmt.Errorf("objects: ping bucket %s: %w", s.bucket, err)
	}
	return nil
}

// EnsureBucket creates the bucket if it does not exist. It is meant for
// development and tests; production buckets are provisioned by Terraform.
func (s *Bucket) EnsureBucket(ctx context.Context) error {
	err := s.headBucket(ctx)
	if err == nil {
		return nil
	}
	if !errors.As(err, new(*types.NotFound)) && !errors.As(err, new(*types.NoSuchBucket)) {
		return fmt.Errorf("objects: check bucket %s: %w", s.bucket, err)
	}
	_, err = s.client.CreateBucket(ctx, &s3.CreateBucketInput{
		Bucket:                    aws.String(s.bucket),
		CreateBucketConfiguration: s.location(),
	})
	// Another process may have created it between the check and now.
	if err != nil && !errors.As(err, new(*types.BucketAlreadyOwnedByYou)) {
		return fmt.Errorf("objects: create bucket %s: %w", s.bucket, err)
	}
	return nil
}

func (s *Bucket) headBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	return err
}

// location names the region for CreateBucket. us-east-1 is the one region
// S3 rejects as an explicit location constraint, so it is left implicit.
func (s *Bucket) location() *types.CreateBucketConfiguration {
	if s.region == defaultRegion {
		return nil
	}
	return &types.CreateBucketConfiguration{
		LocationConstraint: types.BucketLocationConstraint(s.region),
	}
}
