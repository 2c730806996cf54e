package temporalserver

import (
	"log/slog"
	"os"
)

// defaultLogger keeps `easel dev` output readable: the server is chatty at
// info level, so only warnings and errors get through.
func defaultLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
