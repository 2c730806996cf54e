package objects

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// Delete removes keys. Keys that do not exist are not an error, so a retried
// delete succeeds. Several keys go in as few DeleteObjects calls as S3
// allows; servers without DeleteObjects get one DeleteObject per key.
func (s *Bucket) Delete(ctx context.Context, keys ...string) error {
	if len(keys) == 1 {
		return s.deleteOne(ctx, keys[0])
	}
	for start := 0; start < len(keys); start += deleteBatch {
		batch := keys[start:min(start+deleteBatch, len(keys))]
		if err := s.deleteBatch(ctx, batch); err != nil {
			return err
		}
	}
	return nil
}

func (s *Bucket) deleteOne(ctx context.Context, key string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(key),
	})
	if err != nil && !errors.As(err, new(*types.NoSuchKey)) {
		return fmt.Errorf("objects: delete %s: %w", key, err)
	}
	return nil
}

func (s *Bucket) deleteBatch(ctx context.Context, keys []string) error {
	ids := make([]types.ObjectIdentifier, len(keys))
	for i, k := range keys {
		ids[i] = types.ObjectIdentifier{Key: aws.String(k)}
	}
	out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: aws.String(s.bucket),
		// Quiet: only failures come back, keeping large responses small.
		Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
	})
	if isNotImplemented(err) {
		return s.deleteEach(ctx, keys)
	}
	if err != nil {
		return fmt.Errorf("objects: delete %d objects from %s: %w", len(keys), keys[0], err)
	}
	return batchErrors(out.Errors)
}

func (s *Bucket) deleteEach(ctx context.Context, keys []string) error {
	for _, k := range keys {
		if err := s.deleteOne(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// batchErrors turns DeleteObjects' per-key failures into one error. A
// missing key is success, as for a single delete.
func batchErrors(failed []types.Error) error {
	var errs []error
	for _, e := range failed {
		if aws.ToString(e.Code) == "NoSuchKey" {
			continue
		}
		errs = append(errs, fmt.Errorf("objects: delete %s: %s: %s",
			aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message)))
	}
	return errors.Join(errs...)
}

func isNotImplemented(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "NotImplemented"
}
