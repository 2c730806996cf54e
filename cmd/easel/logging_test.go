package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/easel/easel/internal/testenv"
)

// The Redis client's complaints about an unreachable server come out as
// JSON log records, like every other line of the process.
func TestRedisClientLogsThroughSlog(t *testing.T) {
	var buf testenv.Buffer
	redis.SetLogger(redisLog{slog.New(slog.NewJSONHandler(&buf, nil))})
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 50 * time.Millisecond, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(20 * time.Second)
	for buf.Len() == 0 && time.Now().Before(deadline) {
		_ = rdb.Ping(context.Background()).Err()
		time.Sleep(20 * time.Millisecond)
	}
	if buf.Len() == 0 {
		t.Fatal("the Redis client logged nothing about a server that does not answer")
	}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec struct{ Level, Msg string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Level != "WARN" || rec.Msg == "" {
			t.Fatalf("not a JSON warning: %q (%v)", line, err)
		}
	}
}
