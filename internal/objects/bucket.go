// Package objects keeps rendered images and thumbnails in an S3 bucket (AWS
// or an S3-compatible server such as versitygw). Activities upload and delete
// objects; the API hands out presigned URLs and checks the bucket for health.
package objects

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"
)

// ErrNotFound reports that an object does not exist.
var ErrNotFound = errors.New("objects: object not found")

// defaultRegion is used when neither Config nor the environment names one:
// S3-compatible servers ignore the region but SigV4 signing needs one.
const defaultRegion = "us-east-1"

// Config says which bucket to use and how to reach it.
type Config struct {
	Bucket    string
	Region    string
	Endpoint  string // S3_ENDPOINT for S3-compatible servers; "" for AWS
	PathStyle bool   // path-style addressing (S3-compatible servers)
	// Static credentials; both empty means the default AWS credential chain
	// (environment, shared config, instance role).
	AccessKeyID, SecretAccessKey string
}

// Bucket reads and writes objects in one bucket. It is safe for concurrent use.
type Bucket struct {
	bucket  string
	region  string
	client  *s3.Client
	presign *s3.PresignClient
	clock   clock
}

// New builds a Bucket from cfg. It does not contact the server; call Ping or
// EnsureBucket for that.
func New(ctx context.Context, cfg Config) (*Bucket, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("objects: bucket name is required")
	}
	if (cfg.AccessKeyID == "") != (cfg.SecretAccessKey == "") {
		return nil, errors.New("objects: access key ID and secret key must be set together")
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, loadOptions(cfg)...)
	if err != nil {
		return nil, fmt.Errorf("objects: load aws config: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = defaultRegion
	}
	// Retries are left at the SDK's standard retryer: it already backs off
	// on throttling and transient network errors.
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
	})
	return &Bucket{
		bucket:  cfg.Bucket,
		region:  awsCfg.Region,
		client:  client,
		presign: s3.NewPresignClient(client),
	}, nil
}

func loadOptions(cfg Config) []func(*config.LoadOptions) error {
	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKeyID != "" {
		creds := credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")
		opts = append(opts, config.WithCredentialsProvider(creds))
	}
	return opts
}

// Bucket returns the name of the bucket the store works on.
func (s *Bucket) Bucket() string { return s.bucket }

// ImageKey is where a full-size image lives. userID and imageName must
// already be validated (no "/"): they are used verbatim in the key.
func ImageKey(userID, imageName string) string {
	return "users/" + userID + "/images/" + imageName + ".png"
}

// ThumbnailKey is where an image's WebP thumbnail lives, beside the image so
// deleting a user's prefix removes both.
func ThumbnailKey(userID, imageName string) string {
	return "users/" + userID + "/images/thumbnails/" + imageName + ".webp"
}

// UploadKey is where an uploaded picture lives (always a PNG the API
// re-encoded). userID and uploadID must already be validated.
func UploadKey(userID, uploadID string) string {
	return "users/" + userID + "/uploads/" + uploadID + ".png"
}

// SourceKey is where the picture a job starts from lives: an upload when
// ref is an upload's id (a UUID, in canonical form), else the generated
// image that ref names ("<job id>_<i>", never a bare UUID).
func SourceKey(userID, ref string) string {
	if id, err := uuid.Parse(ref); err == nil && id.String() == ref {
		return UploadKey(userID, ref)
	}
	return ImageKey(userID, ref)
}
