package objects

import "time"

// SetClock fixes the time links are signed against, for tests.
func (s *Bucket) SetClock(now func() time.Time) { s.clock = now }

// SetClock fixes the time links are signed against, for tests.
func (c *CloudFrontURLs) SetClock(now func() time.Time) { c.clock = now }
