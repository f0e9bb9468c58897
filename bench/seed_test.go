package bench

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// A seed file is reused when it matches the request and the target's data,
// and replaced when either differs.
func TestSeedReuse(t *testing.T) {
	cfg := SeedConfig{Target: originURL, Users: 3, Posts: 7, BodyBytes: 200, Connections: 4,
		Timeout: 10 * time.Second, File: filepath.Join(t.TempDir(), "seed.json")}
	first, reused, err := LoadOrSeed(context.Background(), cfg, testWriter{t})
	if err != nil || reused {
		t.Fatalf("first seed: reused %v, %v", reused, err)
	}
	if len(first.Users) != 3 || len(first.Posts) != 7 || first.Users[0].PostCount != 3 || first.Users[2].PostCount != 2 {
		t.Fatalf("seed shape: %+v", first)
	}
	for i := 1; i < len(first.Posts); i++ {
		if first.Posts[i].ID <= first.Posts[i-1].ID {
			t.Fatalf("posts not in id order: %+v", first.Posts)
		}
	}
	// The seeded bodies are the requested size and carry the tag.
	resp, err := http.Get(originURL + postPath(first.Posts[6].ID))
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Body   string `json:"body"`
		UserID int64  `json:"user_id"`
	}
	json.NewDecoder(resp.Body).Decode(&p)
	resp.Body.Close()
	if len(p.Body) != 200 || p.UserID != first.Users[first.Posts[6].User].ID {
		t.Errorf("post %d: body of %d bytes by user %d, want 200 by %d", first.Posts[6].ID, len(p.Body), p.UserID, first.Users[first.Posts[6].User].ID)
	}

	again, reused, err := LoadOrSeed(context.Background(), cfg, testWriter{t})
	if err != nil || !reused || again.Tag != first.Tag {
		t.Fatalf("same request: reused %v (tag %s, was %s), %v", reused, again.Tag, first.Tag, err)
	}

	// A file whose tag is not in the target's data is not trusted.
	again.Tag = "seed-elsewhere"
	if err := again.Save(cfg.File); err != nil {
		t.Fatal(err)
	}
	fresh, reused, err := LoadOrSeed(context.Background(), cfg, testWriter{t})
	if err != nil || reused || fresh.Tag == "seed-elsewhere" {
		t.Fatalf("foreign seed file: reused %v, %v", reused, err)
	}

	cfg.Posts = 8
	if _, reused, err = LoadOrSeed(context.Background(), cfg, testWriter{t}); err != nil || reused {
		t.Fatalf("other shape: reused %v, %v", reused, err)
	}
}
