package objects

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// MaxPresignTTL is the longest validity SigV4 allows for a presigned URL.
const MaxPresignTTL = 7 * 24 * time.Hour

// deleteBatch is the most keys S3 accepts in one DeleteObjects call.
const deleteBatch = 1000

// CacheControl is what every stored object is served with, by S3 and by
// CloudFront: keys name one job's image, its thumbnail or one upload, and
// the only rewrite (a render activity retried after a crash) happens
// before the job hands out links; a link is also the same link for a
// while (window.go), so a browser keeps what it has downloaded.
const CacheControl = "max-age=31536000, immutable"

// Put stores body under key, replacing any existing object.
func (s *Bucket) Put(ctx context.Context, key string, body []byte, contentType string) error {
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(key),
		// A bytes.Reader is seekable, so the SDK can checksum and retry it.
		Body:          bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))),
		ContentType:   aws.String(contentType),
		CacheControl:  aws.String(CacheControl),
	})
	if err != nil {
		return fmt.Errorf("objects: put %s: %w", key, err)
	}
	return nil
}

// Get returns the object stored under key, or an error wrapping ErrNotFound
// when there is none.
func (s *Bucket) Get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(key),
	})
	if err != nil {
		if errors.As(err, new(*types.NoSuchKey)) {
			return nil, fmt.Errorf("objects: get %s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("objects: get %s: %w", key, err)
	}
	defer out.Body.Close()
	buf := bytes.NewBuffer(make([]byte, 0, aws.ToInt64(out.ContentLength)))
	if _, err := io.Copy(buf, out.Body); err != nil {
		return nil, fmt.Errorf("objects: read %s: %w", key, err)
	}
	return buf.Bytes(), nil
}

// PresignGet returns a URL that lets anyone holding it download key for at
// least ttl, the same URL for every call within a window (window.go). It
// is computed locally and does not check that the object exists.
func (s *Bucket) PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error) {
	return s.presignGet(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)}, ttl)
}

// PresignDownload is PresignGet for a link that saves the object as a file
// named filename instead of showing it: S3 answers it with
// Content-Disposition: attachment (response-content-disposition, which
// the signature covers). Browsers ignore an <a download> attribute on
// another origin's link, so this is what makes a download button save.
func (s *Bucket) PresignDownload(ctx context.Context, key, filename string, ttl time.Duration) (string, error) {
	return s.presignGet(ctx, &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key),
		ResponseContentDisposition: aws.String(AttachmentDisposition(filename))}, ttl)
}

// AttachmentDisposition is the Content-Disposition that saves a response as
// filename: attachment; filename="<filename>" for a plain ASCII name (an
// image's "<job id>_<i>.png"), else as mime writes it (escaped, or RFC 2231
// encoded), so that no name can end the header.
func AttachmentDisposition(filename string) string {
	plain := filename != ""
	for _, r := range filename {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			plain = false
		}
	}
	if plain {
		return `attachment; filename="` + filename + `"`
	}
	return mime.FormatMediaType("attachment", map[string]string{"filename": filename})
}

func (s *Bucket) presignGet(ctx context.Context, in *s3.GetObjectInput, ttl time.Duration) (string, error) {
	key := aws.ToString(in.Key)
	if ttl <= 0 || ttl > MaxPresignTTL {
		return "", fmt.Errorf("objects: presign %s: ttl %v outside (0, %v]", key, ttl, MaxPresignTTL)
	}
	start, valid := signingWindow(s.clock.now(), ttl)
	req, err := s.presign.PresignGetObject(ctx, in, s3.WithPresignExpires(valid), func(o *s3.PresignOptions) {
		o.Presigner = signedAt{next: o.Presigner, at: start}
	})
	if err != nil {
		return "", fmt.Errorf("objects: presign %s: %w", key, err)
	}
	return req.URL, nil
}

// Origin is the scheme and host of the bucket's presigned URLs (the S3
// endpoint, or the bucket's virtual host on AWS), for a page's
// Content-Security-Policy. It signs a URL locally and contacts nothing.
func (s *Bucket) Origin(ctx context.Context) (string, error) {
	raw, err := s.PresignGet(ctx, "origin", time.Minute)
	if err != nil {
		return "", fmt.Errorf("objects: the bucket's origin: %w", err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("objects: the bucket's origin: %w", err)
	}
	return u.Scheme + "://" + u.Host, nil
}
