//go:build tools

// Package tools pins the modules the packages below will import, so that
// helpers working in parallel do not race on go.mod.
package tools

import (
	_ "github.com/HdrHistogram/hdrhistogram-go"
	_ "github.com/VictoriaMetrics/metrics"
	_ "github.com/bradfitz/gomemcache/memcache"
	_ "github.com/caarlos0/env/v11"
	_ "github.com/dgryski/go-rendezvous"
	_ "github.com/go-sql-driver/mysql"
	_ "github.com/valyala/fasthttp"
	_ "go.uber.org/zap"
	_ "golang.org/x/sync/singleflight"
	_ "gonum.org/v1/plot"
)
