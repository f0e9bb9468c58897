// Package bench is edgecache's load-test harness: it seeds users and posts
// through the origin API, drives the 100:1 read:write mix against one or more
// targets (the proxy, the origin, or any cache in front of the origin) with
// Zipf-skewed popularity and open-loop arrivals, checks every read against
// the writes acknowledged before it was sent, and reports what it measured as
// a text table, JSON, PNG charts and one offline HTML page. It also compares
// runs and turns a run's figures into a sizing plan.
//
// Latency is measured from the time a request was scheduled, not from the
// time it was sent, so a target that stalls cannot hide its stall behind a
// load generator that politely waited for it (coordinated omission).
package bench
