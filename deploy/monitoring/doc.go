// Package monitoring holds what an operator imports into their monitoring:
// a Grafana dashboard (edgecache-dashboard.json) and Prometheus alerting
// rules (edgecache-rules.yml), with the tests that keep them true: the
// rules pass promtool, the dashboard has what Grafana needs to import it,
// and every metric either names is exported by a running proxy, origin or
// invalidator.
package monitoring
