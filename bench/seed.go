package bench

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/sync/errgroup"
)

// Seed is the data set a run works on: users with their tokens, and posts
// with their owners. It is saved to a file so runs can reuse it, and after
// each run it carries the acknowledged state forward (post versions and
// post counts only grow), which the read-after-write check starts from.
type Seed struct {
	// Tag is random per seeding and written into every seeded post body, so
	// a seed file can be checked against the database it claims to describe.
	Tag       string     `json:"tag"`
	Target    string     `json:"target"`
	BodyBytes int        `json:"body_bytes"`
	Created   time.Time  `json:"created"`
	Users     []SeedUser `json:"users"`
	Posts     []SeedPost `json:"posts"`
}

// SeedUser is one seeded user.
type SeedUser struct {
	ID        int64  `json:"id"`
	Token     string `json:"token"`
	PostCount int64  `json:"post_count"` // acknowledged lower bound
}

// SeedPost is one seeded post; User indexes Seed.Users.
type SeedPost struct {
	ID      int64 `json:"id"`
	User    int   `json:"user"`
	Version int64 `json:"version"` // acknowledged lower bound
}

// SeedConfig says what to seed.
type SeedConfig struct {
	Target      string `json:"target"`
	Users       int    `json:"users"`
	Posts       int    `json:"posts"`
	BodyBytes   int    `json:"body_bytes"`
	Connections int    `json:"connections"`
	Timeout     time.Duration
	File        string `json:"file"`
}

// Validate rejects settings that cannot produce a usable seed.
func (c SeedConfig) Validate() error {
	switch {
	case c.Target == "":
		return errors.New("seed: -target is required")
	case c.Users < 1:
		return errors.New("seed: -users must be ≥ 1")
	case c.Posts < 1:
		return errors.New("seed: -posts must be ≥ 1")
	case c.BodyBytes < 64 || c.BodyBytes > 1024:
		return errors.New("seed: -body-bytes must be in [64, 1024] (the origin accepts up to 1024)")
	case c.Connections < 1:
		return errors.New("seed: -connections must be ≥ 1")
	case c.Timeout <= 0:
		return errors.New("seed: -timeout must be > 0")
	}
	return nil
}

// LoadOrSeed reuses the seed file when it exists, has the requested shape and
// still matches the database behind the target; otherwise it seeds anew and
// saves the file. progress receives a progress bar (stderr).
func LoadOrSeed(ctx context.Context, cfg SeedConfig, progress io.Writer) (*Seed, bool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, false, err
	}
	if cfg.File != "" {
		if s, err := LoadSeed(cfg.File); err == nil {
			if s.matches(cfg) {
				if err := s.verify(cfg); err == nil {
					return s, true, nil
				} else {
					fmt.Fprintf(progress, "seed file %s does not match the target's data (%v): seeding anew\n", cfg.File, err)
				}
			} else {
				fmt.Fprintf(progress, "seed file %s has %d users, %d posts, %d-byte bodies; want %d, %d, %d: seeding anew\n",
					cfg.File, len(s.Users), len(s.Posts), s.BodyBytes, cfg.Users, cfg.Posts, cfg.BodyBytes)
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, false, err
		}
	}
	s, err := seed(ctx, cfg, progress)
	if err != nil {
		return nil, false, err
	}
	if cfg.File != "" {
		if err := s.Save(cfg.File); err != nil {
			return nil, false, err
		}
	}
	return s, false, nil
}

// LoadSeed reads a seed file.
func LoadSeed(path string) (*Seed, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Seed
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("seed file %s: %w", path, err)
	}
	if len(s.Users) == 0 || len(s.Posts) == 0 {
		return nil, fmt.Errorf("seed file %s: no users or posts", path)
	}
	for _, p := range s.Posts {
		if p.User < 0 || p.User >= len(s.Users) {
			return nil, fmt.Errorf("seed file %s: post %d has owner index %d out of range", path, p.ID, p.User)
		}
	}
	return &s, nil
}

// Save writes the seed file atomically (the tokens in it are secrets of the
// test data only; it is still written 0600).
func (s *Seed) Save(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func (s *Seed) matches(cfg SeedConfig) bool {
	return len(s.Users) == cfg.Users && len(s.Posts) == cfg.Posts && s.BodyBytes == cfg.BodyBytes
}

// verify reads the last seeded post and user back from the target: a seed
// file from an earlier database (same ids, other data) must not be reused.
func (s *Seed) verify(cfg SeedConfig) error {
	var retries atomic.Int64
	t, err := newTarget(cfg.Target, 2, cfg.Timeout, &retries)
	if err != nil {
		return err
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	last := s.Posts[len(s.Posts)-1]
	t.prepare(req, "GET", t.uri(postPath(last.ID)), "", nil)
	if err := t.do(req, resp, cfg.Timeout); err != nil {
		return err
	}
	if resp.StatusCode() != 200 {
		return fmt.Errorf("GET %s: status %d", postPath(last.ID), resp.StatusCode())
	}
	var p struct {
		Body string `json:"body"`
	}
	if err := json.Unmarshal(resp.Body(), &p); err != nil {
		return fmt.Errorf("GET %s: %w", postPath(last.ID), err)
	}
	if !strings.Contains(p.Body, s.Tag) {
		return fmt.Errorf("post %d was not written by this seed", last.ID)
	}
	u := s.Users[len(s.Users)-1]
	t.prepare(req, "GET", t.uri(userPath(u.ID)), "", nil)
	if err := t.do(req, resp, cfg.Timeout); err != nil {
		return err
	}
	if resp.StatusCode() != 200 {
		return fmt.Errorf("GET %s: status %d", userPath(u.ID), resp.StatusCode())
	}
	return nil
}

// seed creates the users, then the posts (post i belongs to user i mod N),
// each phase in parallel over cfg.Connections connections.
func seed(ctx context.Context, cfg SeedConfig, progress io.Writer) (*Seed, error) {
	tag := make([]byte, 8)
	rand.Read(tag)
	s := &Seed{
		Tag:       "seed-" + hex.EncodeToString(tag),
		Target:    cfg.Target,
		BodyBytes: cfg.BodyBytes,
		Created:   time.Now().UTC().Truncate(time.Second),
		Users:     make([]SeedUser, cfg.Users),
		Posts:     make([]SeedPost, cfg.Posts),
	}
	var retries atomic.Int64
	t, err := newTarget(cfg.Target, cfg.Connections, cfg.Timeout, &retries)
	if err != nil {
		return nil, err
	}
	bar := newProgressBar(progress, "seeding", cfg.Users+cfg.Posts)
	defer bar.finish()

	err = parallel(ctx, cfg.Connections, cfg.Users, func(c *conn, i int) error {
		body := fmt.Sprintf(`{"name":"bench user %d","email":"%s-%d@bench.invalid"}`, i, s.Tag, i)
		var u struct {
			ID    int64  `json:"id"`
			Token string `json:"token"`
		}
		if err := c.call(t, "POST", "/v1/users", "", []byte(body), 201, &u, cfg.Timeout); err != nil {
			return fmt.Errorf("create user %d: %w", i, err)
		}
		if u.ID == 0 || u.Token == "" {
			return fmt.Errorf("create user %d: answer without id or token", i)
		}
		s.Users[i] = SeedUser{ID: u.ID, Token: u.Token}
		bar.add(1)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var counts = make([]atomic.Int64, cfg.Users)
	err = parallel(ctx, cfg.Connections, cfg.Posts, func(c *conn, i int) error {
		ui := i % cfg.Users
		u := s.Users[ui]
		var p struct {
			ID      int64 `json:"id"`
			Version int64 `json:"version"`
		}
		body := postBody(s.Tag, int64(i), cfg.BodyBytes)
		if err := c.call(t, "POST", userPostsPath(u.ID), u.Token, body, 201, &p, cfg.Timeout); err != nil {
			return fmt.Errorf("create post %d: %w", i, err)
		}
		if p.ID == 0 {
			return fmt.Errorf("create post %d: answer without id", i)
		}
		s.Posts[i] = SeedPost{ID: p.ID, User: ui, Version: max(p.Version, 1)}
		counts[ui].Add(1)
		bar.add(1)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range s.Users {
		s.Users[i].PostCount = counts[i].Load()
	}
	// Posts were created in parallel; keep them in id order so the last one
	// is the newest (verify reads it back).
	slices.SortFunc(s.Posts, func(a, b SeedPost) int { return cmp.Compare(a.ID, b.ID) })
	return s, nil
}

// conn is one worker's reusable request and response.
type conn struct {
	req  *fasthttp.Request
	resp *fasthttp.Response
}

// call does one API call that must answer with status want and decodes the
// JSON answer into out.
func (c *conn) call(t *target, method, path, token string, body []byte, want int, out any, timeout time.Duration) error {
	auth := ""
	if token != "" {
		auth = "Bearer " + token
	}
	t.prepare(c.req, method, t.uri(path), auth, body)
	if err := t.do(c.req, c.resp, timeout); err != nil {
		return fmt.Errorf("%s %s: %s", method, path, errorKind(err, 0))
	}
	if c.resp.StatusCode() != want {
		return fmt.Errorf("%s %s: status %d: %.200s", method, path, c.resp.StatusCode(), c.resp.Body())
	}
	if out != nil {
		if err := json.Unmarshal(c.resp.Body(), out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// parallel runs fn for 0..n-1 on workers goroutines and stops at the first
// error.
func parallel(ctx context.Context, workers, n int, fn func(c *conn, i int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	var next atomic.Int64
	for range min(workers, n) {
		g.Go(func() error {
			c := &conn{fasthttp.AcquireRequest(), fasthttp.AcquireResponse()}
			defer fasthttp.ReleaseRequest(c.req)
			defer fasthttp.ReleaseResponse(c.resp)
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return nil
				}
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := fn(c, i); err != nil {
					return err
				}
			}
		})
	}
	return g.Wait()
}

// postBody is a JSON post body whose text is exactly size bytes of ASCII,
// starting with the seed tag and a sequence number so bodies differ.
func postBody(tag string, n int64, size int) []byte {
	head := tag + " " + itoa(n) + " "
	text := make([]byte, size)
	copy(text, head)
	for i := len(head); i < size; i++ {
		text[i] = 'a' + byte(i%26)
	}
	if len(head) > size {
		text = text[:size]
	}
	b := make([]byte, 0, size+12)
	b = append(b, `{"body":"`...)
	b = append(b, text...)
	b = append(b, `"}`...)
	return b
}

func postPath(id int64) string      { return "/v1/posts/" + itoa(id) }
func userPath(id int64) string      { return "/v1/users/" + itoa(id) }
func userPostsPath(id int64) string { return "/v1/users/" + itoa(id) + "/posts" }

// progressBar shows a phase's progress. On a terminal it redraws one line
// ("label [=====>    ] done/total pct rate/s") five times a second; on
// anything else (a log file, a pipe, CI) it writes a plain line every 10%,
// never a carriage return. It is a few lines by hand rather than a
// dependency: all it needs is that one choice.
type progressBar struct {
	w     io.Writer
	tty   bool
	label string
	total int
	start time.Time
	done  atomic.Int64
	shown int // non-terminal: the last tenth written
	stop  chan struct{}
	wg    sync.WaitGroup
}

func newProgressBar(w io.Writer, label string, total int) *progressBar {
	b := &progressBar{w: w, tty: isTerminal(w), label: label, total: total, start: time.Now(), stop: make(chan struct{})}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-b.stop:
				b.draw(true)
				return
			case <-tick.C:
				b.draw(false)
			}
		}
	}()
	return b
}

func (b *progressBar) add(n int) { b.done.Add(int64(n)) }

func (b *progressBar) draw(last bool) {
	const width = 30
	done := int(b.done.Load())
	pct := 100 * done / max(b.total, 1)
	rate := float64(done) / time.Since(b.start).Seconds()
	if !b.tty {
		if tenth := pct / 10; tenth > b.shown || last {
			b.shown = tenth
			fmt.Fprintf(b.w, "%s: %d/%d (%d%%), %.0f/s\n", b.label, done, b.total, pct, rate)
		}
		return
	}
	filled := width * done / max(b.total, 1)
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
	if filled < width {
		bar = bar[:filled] + ">" + bar[filled+1:]
	}
	fmt.Fprintf(b.w, "\r%s [%s] %d/%d %3d%% %.0f/s \x1b[K", b.label, bar, done, b.total, pct, rate)
	if last {
		fmt.Fprintln(b.w)
	}
}

func (b *progressBar) finish() {
	close(b.stop)
	b.wg.Wait()
}

// isTerminal reports whether w is a terminal, where a line may be redrawn.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
