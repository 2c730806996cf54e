package api

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/easel/easel/internal/catalog"
	"github.com/easel/easel/internal/pricing"
	"github.com/easel/easel/internal/progress"
	"github.com/easel/easel/internal/store"
)

// GenerationView is a job as the API shows it.
type GenerationView struct {
	ID             string           `json:"id"`
	Status         string           `json:"status"`
	Progress       *progress.Status `json:"progress,omitempty"`
	Params         json.RawMessage  `json:"params"`
	Price          pricing.Quote    `json:"price"`
	Plan           string           `json:"plan"`
	GPUTier        string           `json:"gpu_tier"`
	CreditsHeld    int              `json:"credits_held"`
	CreditsSettled *int             `json:"credits_settled"`
	ImagesProduced int              `json:"images_produced"`
	ImagesKept     int              `json:"images_kept"`
	ComputeSecs    float64          `json:"compute_seconds"`
	Images         []ImageView      `json:"images"`
	Error          string           `json:"error,omitempty"`
	CreatedAt      time.Time        `json:"created_at"`
	StartedAt      *time.Time       `json:"started_at"`
	CompletedAt    *time.Time       `json:"completed_at"`
	Links          Links            `json:"links"`
}

// Links point at a job's related resources.
type Links struct {
	Self   string `json:"self"`
	Events string `json:"events"`
	Cancel string `json:"cancel"`
}

// ImageView is a stored image with short-lived download URLs.
type ImageView struct {
	Name         string          `json:"name"`
	GenerationID string          `json:"generation_id"`
	Width        int             `json:"width"`
	Height       int             `json:"height"`
	Seed         int64           `json:"seed"`
	Bytes        int64           `json:"bytes"`
	Starred      bool            `json:"starred"`
	URL          string          `json:"url"`
	DownloadURL  string          `json:"download_url"`
	ThumbnailURL string          `json:"thumbnail_url"`
	Metadata     json.RawMessage `json:"metadata,omitempty"`
	CreatedAt    time.Time       `json:"created_at"`
}

func (s *Server) generationView(ctx context.Context, g store.Generation, withImages bool) (GenerationView, error) {
	v := GenerationView{ID: g.ID, Status: g.Status, Params: g.Params, Plan: g.Plan, GPUTier: g.GPUTier,
		CreditsHeld: g.CreditsHeld, CreditsSettled: g.CreditsSettled, ImagesProduced: g.ImagesProduced,
		ComputeSecs: g.ComputeSeconds, Error: g.Error, CreatedAt: g.CreatedAt, StartedAt: g.StartedAt,
		CompletedAt: g.CompletedAt,
		Images:      []ImageView{}, Links: links(g.ID)}
	var p struct {
		Model, Prompt        string
		Width, Height, Steps int
		BatchSize            int      `json:"batch_size"`
		InitImage            string   `json:"init_image"`
		Strength             *float64 `json:"strength"`
	}
	switch {
	case g.CreditsHeld > 0 && g.BatchSize > 0:
		// The hold is the quote the job was admitted at (a raw graph is
		// priced by its passes, which the fields alone do not show).
		v.Price = pricing.Quote{PerImage: g.CreditsHeld / g.BatchSize, Images: g.BatchSize,
			Total: g.CreditsHeld, Formula: pricing.Formula}
	case json.Unmarshal(g.Params, &p) == nil:
		req := pricing.Request{Model: p.Model, Width: p.Width, Height: p.Height, Steps: p.Steps, BatchSize: p.BatchSize}
		if p.InitImage != "" && p.Strength != nil {
			req.InitImage, req.Strength = true, *p.Strength
		}
		v.Price, _ = pricing.Price(req)
	}
	if !g.Terminal() {
		st, ok, err := s.Progress.Get(ctx, g.ID)
		if err != nil {
			// The live status (Redis) is an extra: the job itself is in
			// Postgres, so it is shown without progress rather than not at
			// all.
			s.Log.WarnContext(ctx, "live progress unavailable; answering without it", "job_id", g.ID, "err", err)
			ok = false
		}
		if ok {
			if !withImages {
				st.Preview = nil // a list stays small; GET one job or its events show it
			}
			v.Progress = &st
			// The GPU worker reports the render's start in the live status
			// only; a job being canceled stays canceling.
			if st.State == catalog.JobRunning && g.Status == catalog.JobQueued {
				v.Status = catalog.JobRunning
				if v.StartedAt == nil && st.StartedAt != nil {
					v.StartedAt = st.StartedAt
				}
				s.recordRunning(ctx, g, st)
			}
		}
	}
	if withImages && g.ImagesProduced > 0 {
		imgs, err := s.Store.JobImages(ctx, g.UserID, g.ID)
		if err != nil {
			return v, err
		}
		for _, img := range imgs {
			iv, err := s.imageView(ctx, img, false)
			if err != nil {
				return v, err
			}
			v.Images = append(v.Images, iv)
		}
		v.ImagesKept = len(v.Images)
	}
	return v, nil
}

// recordRunning writes the start a GPU worker reported to the job's row
// (status running, started_at) the first time the job is read after it: the
// render reports its start to Redis alone, which saves the workflow a
// signal, a workflow task and a local activity per job, and the first read
// brings the database up to what the reader is shown. Finalize records the
// start in any case. A failure is logged: the answer is right without it.
func (s *Server) recordRunning(ctx context.Context, g store.Generation, st progress.Status) {
	if st.StartedAt == nil {
		return
	}
	if err := s.Store.MarkRunning(ctx, g.UserID, g.ID, *st.StartedAt); err != nil && s.Log != nil {
		s.Log.WarnContext(ctx, "record job running", "job_id", g.ID, "err", err)
	}
}

func links(id string) Links {
	self := "/v1/generations/" + id
	return Links{Self: self, Events: self + "/events", Cancel: self}
}

func (s *Server) imageView(ctx context.Context, img store.Image, withMeta bool) (ImageView, error) {
	url, err := s.imageURL(ctx, img.Key)
	if err != nil {
		return ImageView{}, err
	}
	download, err := s.downloadURL(ctx, img.Key, img.Name+".png")
	if err != nil {
		return ImageView{}, err
	}
	thumb, err := s.imageURL(ctx, img.ThumbnailKey)
	if err != nil {
		return ImageView{}, err
	}
	v := ImageView{Name: img.Name, GenerationID: img.JobID, Width: img.Width, Height: img.Height, Bytes: img.Bytes,
		Starred: img.Starred, URL: url, DownloadURL: download, ThumbnailURL: thumb, CreatedAt: img.CreatedAt}
	var meta struct {
		Seed int64 `json:"seed"`
	}
	_ = json.Unmarshal(img.Metadata, &meta)
	v.Seed = meta.Seed
	if withMeta {
		v.Metadata = img.Metadata
	}
	return v, nil
}

func (s *Server) listImages(c *gin.Context) {
	page, ok := parseCursorPage(c, anyKey)
	if !ok {
		return
	}
	filter, ok := imageFilter(c)
	if !ok {
		return
	}
	imgs, err := s.Store.ListImages(c.Request.Context(), user(c).ID, page, filter)
	if err != nil {
		unavailable(c, err)
		return
	}
	views := make([]ImageView, 0, len(imgs))
	for _, img := range imgs {
		v, err := s.imageView(c.Request.Context(), img, false)
		if err != nil {
			unavailable(c, err)
			return
		}
		views = append(views, v)
	}
	c.JSON(http.StatusOK, gin.H{"images": views, "next_before": nextCursor(len(views), page.Limit, func() (time.Time, string) {
		return imgs[len(imgs)-1].CreatedAt, imgs[len(imgs)-1].Name
	})})
}

func (s *Server) getImage(c *gin.Context) {
	img, err := s.Store.GetImage(c.Request.Context(), user(c).ID, c.Param("name"))
	if !s.imageFound(c, err) {
		return
	}
	v, err := s.imageView(c.Request.Context(), img, true)
	if err != nil {
		unavailable(c, err)
		return
	}
	c.JSON(http.StatusOK, v)
}

// GrantView is one block of credits.
type GrantView struct {
	ID         string    `json:"id"`
	Source     string    `json:"source"`
	Total      int       `json:"total"`
	Used       int       `json:"used"`
	ValidFrom  time.Time `json:"valid_from"`
	ValidUntil time.Time `json:"valid_until"`
}

func (s *Server) credits(c *gin.Context) {
	u := user(c)
	b, err := s.balance(c.Request.Context(), u.ID)
	if err != nil {
		unavailable(c, err)
		return
	}
	grants, err := s.Store.Grants(c.Request.Context(), u.ID)
	if err != nil {
		unavailable(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"available": b.Available, "held": b.Held, "granted": b.Granted,
		"grants": grantViews(grants), "pricing": pricing.Formula})
}

func grantViews(grants []store.Grant) []GrantView {
	views := make([]GrantView, 0, len(grants))
	for _, g := range grants {
		views = append(views, GrantView{ID: g.ID, Source: g.Source, Total: g.Total, Used: g.Used,
			ValidFrom: g.ValidFrom, ValidUntil: g.ValidUntil})
	}
	return views
}

// imageURL is a link that downloads key for PresignTTL: CloudFront-signed
// when the CDN is configured, else presigned on S3.
func (s *Server) imageURL(ctx context.Context, key string) (string, error) {
	if s.ImageURLs != nil {
		return s.ImageURLs.SignedURL(key, s.PresignTTL)
	}
	return s.Objects.PresignGet(ctx, key, s.PresignTTL)
}

// downloadURL is imageURL for a link that saves the object as filename
// (Content-Disposition: attachment) rather than showing it.
func (s *Server) downloadURL(ctx context.Context, key, filename string) (string, error) {
	if s.ImageURLs != nil {
		return s.ImageURLs.SignedDownloadURL(key, filename, s.PresignTTL)
	}
	return s.Objects.PresignDownload(ctx, key, filename, s.PresignTTL)
}
