package objects

import (
	"crypto"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/cloudfront/sign"
)

// CloudFrontURLs hands out CloudFront signed URLs for objects of the image
// bucket: https://<domain>/images/<key>, with a canned policy that expires
// after the given time. The distribution's /images/* behaviour trusts the
// key group holding the public half of the key and strips the /images
// prefix before reading the bucket, so images are served from the edge
// cache and the bucket stays private.
type CloudFrontURLs struct {
	base   string
	signer *sign.URLSigner
	clock  clock
}

// NewCloudFrontURLs signs with the key pair keyID names in the key group;
// privateKeyPEM is its RSA private key, PKCS#1 or PKCS#8.
func NewCloudFrontURLs(domain, keyID, privateKeyPEM string) (*CloudFrontURLs, error) {
	domain = strings.TrimSuffix(strings.TrimPrefix(domain, "https://"), "/")
	if domain == "" || strings.ContainsAny(domain, "/?#") {
		return nil, fmt.Errorf("cloudfront domain %q is not a host name", domain)
	}
	if keyID == "" {
		return nil, fmt.Errorf("cloudfront key id is required")
	}
	key, err := loadSigner(privateKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("cloudfront private key: %w", err)
	}
	return &CloudFrontURLs{base: "https://" + domain + "/images/", signer: sign.NewURLSigner(keyID, key)}, nil
}

func loadSigner(pemText string) (crypto.Signer, error) {
	if k, err := sign.LoadPEMPrivKey(strings.NewReader(pemText)); err == nil {
		return k, nil
	}
	return sign.LoadPEMPrivKeyPKCS8AsSigner(strings.NewReader(pemText))
}

// SignedURL returns a URL that serves key for at least ttl, the same URL
// for every call within a window (window.go).
func (c *CloudFrontURLs) SignedURL(key string, ttl time.Duration) (string, error) {
	return c.sign(key, "", ttl)
}

// SignedDownloadURL is SignedURL for a link that saves the object as a
// file named filename: ?download=<filename>, which the signature covers.
// The distribution's /images/* behaviour answers such a request with
// Content-Disposition: attachment; filename="<filename>" (a viewer-response
// function; terraform/modules/cloudfront). The query string is not part of
// the cache key, so both links share one cached object.
func (c *CloudFrontURLs) SignedDownloadURL(key, filename string, ttl time.Duration) (string, error) {
	return c.sign(key, "download="+url.QueryEscape(filename), ttl)
}

func (c *CloudFrontURLs) sign(key, query string, ttl time.Duration) (string, error) {
	if ttl <= 0 {
		return "", fmt.Errorf("sign %s: ttl %s must be positive", key, ttl)
	}
	u := c.base + (&url.URL{Path: key}).EscapedPath()
	if query != "" {
		u += "?" + query
	}
	start, valid := signingWindow(c.clock.now(), ttl)
	signed, err := c.signer.Sign(u, start.Add(valid))
	if err != nil {
		return "", fmt.Errorf("sign %s: %w", key, err)
	}
	return signed, nil
}
