// Command ceiling is compare.sh's ceiling: a fasthttp server that answers
// every request with the same response, doing nothing else. No cache can
// beat it on this machine; compare.sh reports every target as a ratio of
// it, measured in the same run.
//
// By default the response is a 1 KB body with the fields any server sends
// (Content-Type, Content-Length, Date). With -response it is a response
// read from a file (as curl -si prints it): compare.sh gives it
// edgecache's own answer, so that "ceiling(same answer)" tells what
// the bytes edgecache has to send cost (Age, Via and Cache-Status, the
// origin's fields, the larger body), apart from what its work costs.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"log"
	"os"

	"github.com/valyala/fasthttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8093", "host:port to listen on")
	file := flag.String("response", "", "answer with this HTTP response (status line, fields, body) instead of a 1 KB body")
	flag.Parse()
	body := bytes.Repeat([]byte("x"), 1024)
	handler := func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBody(body)
	}
	if *file != "" {
		fixed, err := readResponse(*file)
		if err != nil {
			log.Fatal(err)
		}
		handler = func(ctx *fasthttp.RequestCtx) {
			// A kept header copied in, as edgecache's hits do: the cheapest
			// way fasthttp has to send a header it did not build.
			fixed.Header.CopyTo(&ctx.Response.Header)
			ctx.Response.SetBodyRaw(fixed.Body())
		}
	}
	s := &fasthttp.Server{Handler: handler, NoDefaultServerHeader: true}
	log.Fatal(s.ListenAndServe(*listen))
}

// readResponse reads the response in file, without its Date: the server
// writes its own, as for the default.
func readResponse(file string) (*fasthttp.Response, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var r fasthttp.Response
	if err := r.Read(bufio.NewReader(bytes.NewReader(raw))); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	r.Header.Del("Date")
	return &r, nil
}
