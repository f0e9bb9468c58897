// Command ceiling is compare.sh's ceiling: a fasthttp server that answers
// every request with the same 1 KB body, doing nothing else. No cache can
// beat it on this machine; compare.sh reports every target as a ratio of
// it, measured in the same run.
package main

import (
	"bytes"
	"flag"
	"log"

	"github.com/valyala/fasthttp"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8093", "host:port to listen on")
	flag.Parse()
	body := bytes.Repeat([]byte("x"), 1024)
	s := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.SetContentType("application/json")
			ctx.SetBody(body)
		},
		NoDefaultServerHeader: true,
	}
	log.Fatal(s.ListenAndServe(*listen))
}
