package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// A service's last line is JSON like its logs (unless LOG_FORMAT=text); a
// command a person runs ends with a plain line.
func TestExitLineMatchesTheLogs(t *testing.T) {
	failed := errors.New("configuration:\nDATABASE_URL is not set")
	for _, tt := range []struct {
		command, format string
		json            bool
	}{
		{"api", "", true}, {"worker", "json", true}, {"api", "text", false}, {"migrate", "", false}, {"dev", "json", false},
	} {
		t.Setenv("LOG_FORMAT", tt.format)
		var out bytes.Buffer
		reportExit(&out, &cobra.Command{Use: tt.command}, failed)
		var line struct{ Level, Msg, Err string }
		isJSON := json.Unmarshal(out.Bytes(), &line) == nil
		switch {
		case tt.json && (!isJSON || line.Level != "ERROR" || line.Err != failed.Error()):
			t.Errorf("%s with LOG_FORMAT=%q: %q, want one JSON error line", tt.command, tt.format, out.String())
		case !tt.json && !strings.HasPrefix(out.String(), "easel: configuration:"):
			t.Errorf("%s with LOG_FORMAT=%q: %q, want a plain line", tt.command, tt.format, out.String())
		}
	}
}
