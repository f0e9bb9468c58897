// Command fleet runs a multi-AZ edgecache fleet on this machine, in the
// foreground, for fault drills: a MariaDB primary and replica, three zones
// (a, b, c) each with a memcached node and a proxy (origins in zones a and
// b), and HAProxy in front of the proxies on 127.0.0.1:8080 with its stats
// page on 127.0.0.1:8404. Everything else listens on loopback ports the
// kernel chooses. Drills are typed on stdin (help lists them); Ctrl-C stops
// everything it started. `make fleet` calls it.
//
// The proxies and origins read their usual PROXY_* and ORIGIN_* variables;
// the fleet sets only their listen addresses, origins, memcached pool and
// database DSNs. The databases are new and empty at every start.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"edgecache/deploy/envconfig"
	"edgecache/deploy/fleet"
	"edgecache/deploy/localstack"
	"edgecache/origin"
	"edgecache/proxy"

	"go.uber.org/zap"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "HAProxy front host:port (clients connect here)")
	stats := flag.String("stats", "127.0.0.1:8404", "HAProxy stats page host:port (/stats, /stats;csv)")
	dir := flag.String("dir", ".run/fleet", "run folder: HAProxy's generated config, error files and log, and the databases' and memcached's data (new at every start)")
	memcachedMB := flag.Int("memcached-mb", 64, "item memory of each memcached node, in MiB")
	haproxy := flag.String("haproxy", "", "haproxy binary (default: haproxy on PATH, else /usr/sbin/haproxy)")
	drills := flag.String("drills", "", "run these fault drills under load (comma-separated names, or all), print a table, and exit: "+drillNames())
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: fleet [flags]\n\nRuns MariaDB (primary and replica), 3 zones of memcached + proxy (+ origin in a and b)\nand HAProxy in front, on loopback, until Ctrl-C. Type drills on stdin (help).\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()

	log, _ := zap.NewDevelopment()
	opts := fleet.Options{Dir: *dir, Listen: *listen, StatsListen: *stats,
		MemcachedMB: *memcachedMB, HAProxy: *haproxy, Log: log}
	if *drills != "" {
		opts.Log = log.WithOptions(zap.IncreaseLevel(zap.ErrorLevel))
		ok, err := runDrills(opts, *drills)
		if err != nil {
			log.Error("drills failed", zap.Error(err))
			os.Exit(1)
		}
		if !ok {
			os.Exit(2)
		}
		return
	}
	restore := localstack.TakeTerminal() // Ctrl-C under make fleet: exit 0
	err := run(log, opts)
	restore()
	if err != nil {
		log.Error("fleet failed", zap.Error(err))
		os.Exit(1)
	}
}

func drillNames() string {
	var names []string
	for _, d := range fleet.Drills {
		names = append(names, d.Name)
	}
	return strings.Join(names, ", ")
}

// runDrills starts a fleet, runs the named drills one after another and
// prints their table; ok is false when one saw a stale read or lost a write.
func runDrills(opts fleet.Options, names string) (ok bool, err error) {
	var list []fleet.Drill
	if names == "all" {
		list = fleet.Drills
	} else {
		for _, n := range strings.Split(names, ",") {
			d, found := fleet.DrillByName(strings.TrimSpace(n))
			if !found {
				return false, fmt.Errorf("unknown drill %q (drills: %s)", n, drillNames())
			}
			list = append(list, d)
		}
	}
	// Access logs would drown the table.
	pcfg, err := envconfig.Load[proxy.Config]()
	if err != nil {
		return false, err
	}
	ocfg, err := envconfig.Load[origin.Config]()
	if err != nil {
		return false, err
	}
	pcfg.AccessLog, ocfg.AccessLog = "off", "off"
	opts.Proxy, opts.Origin = &pcfg, &ocfg
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f, err := fleet.Start(ctx, opts)
	if err != nil {
		return false, err
	}
	defer f.Stop()
	var results []fleet.DrillResult
	ok = true
	for _, d := range list {
		fmt.Printf("drill %s: %s\n", d.Name, d.What)
		r := f.RunDrill(ctx, d)
		fmt.Printf("  %s: %d reads, %d writes, %d stale, %d lost, errors %s", r.Took.Round(time.Second), r.Stats.Reads, r.Stats.Writes, r.Stats.Stale, r.Stats.Lost, r.Stats.ErrorsText())
		if r.Stats.PendingLatest > 0 {
			fmt.Printf("; a version older than a pending answer read %s after it", r.Stats.PendingLatest.Round(time.Millisecond))
		}
		fmt.Println()
		results = append(results, r)
		ok = ok && r.Passed()
	}
	fmt.Println()
	fleet.WriteDrillTable(os.Stdout, results)
	return ok, nil
}

func run(log *zap.Logger, opts fleet.Options) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	f, err := fleet.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer f.Stop()

	var b strings.Builder
	fmt.Fprintf(&b, "\nthe fleet is running:\n")
	fmt.Fprintf(&b, "  HAProxy   %s        (clients)\n", f.FrontURL())
	fmt.Fprintf(&b, "  stats     %s   (CSV: %s;csv)\n", f.StatsURL(), f.StatsURL())
	for _, name := range fleet.Zones {
		z := f.Zone(name)
		fmt.Fprintf(&b, "  zone %s   proxy http://%s  admin http://%s/readyz", name, z.ProxyAddr(), z.AdminAddr())
		if z.Origin != nil {
			fmt.Fprintf(&b, "  origin http://%s", z.Origin.Addr())
		}
		fmt.Fprintf(&b, "  memcached %s\n", z.Memcached.Addr)
		if a := z.InvalidatorAdminAddr(); a != "" {
			fmt.Fprintf(&b, "  invalidator admin http://%s/memcached\n", a)
		}
	}
	fmt.Fprintf(&b, "  mariadb   primary %s\n            replica %s\n", f.Primary.DSN("edgecache"), f.Replica.DSN("edgecache"))
	fmt.Fprintf(&b, "  run folder %s (haproxy.cfg, haproxy.log, data)\n", f.Dir())
	fmt.Fprintf(&b, `
try, in another terminal:
  curl -si -X POST %[1]s/v1/users -H 'Content-Type: application/json' -d '{"name":"ada","email":"ada@example.com"}'
  curl -si %[1]s/v1/users/1
  watch -n1 "curl -s '%[2]s;csv' | cut -d, -f1,2,18,37 | grep proxies"

drills (type here, then Enter):
%[3]s
Ctrl-C stops everything.
`, f.FrontURL(), f.StatsURL(), help)
	fmt.Print(b.String())

	go console(ctx, f, os.Stdin, os.Stdout)
	<-ctx.Done()
	fmt.Println("\nstopping")
	return nil
}

const help = `  stop ZONE           drain and stop the zone's proxy (HAProxy marks it down first)
  kill ZONE           the zone's proxy, origin and memcached go away at once
  pause ZONE          freeze the zone's memcached node (SIGSTOP); resume ZONE continues it
  pause-proxy ZONE    freeze the zone's proxy as SIGSTOP would; resume-proxy ZONE continues it
  pause-origin ZONE   freeze the zone's origin as SIGSTOP would (a, b); resume-origin ZONE continues it
  stop-replica        stop the MariaDB replica (origins read from the primary)
  status              HAProxy's view of each proxy
  memcached spare               start an empty memcached node no one knows yet; prints its address
  memcached add ADDR            add a node to the membership (the invalidators' POST /memcached/add)
  memcached remove ADDR         remove a node from it
  memcached replace OLD NEW     put NEW in OLD's place
  memcached status              the membership: generation, phase, read and write sets, nodes' health
  help                this list
  (zones: a, b, c)`

// console runs the drills typed on in, one per line, until in ends.
func console(ctx context.Context, f *fleet.Fleet, in io.Reader, out io.Writer) {
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		words := strings.Fields(sc.Text())
		if len(words) == 0 {
			continue
		}
		arg := ""
		if len(words) > 1 {
			arg = words[1]
		}
		var err error
		switch words[0] {
		case "stop":
			err = f.StopProxy(ctx, arg)
		case "kill":
			err = f.KillZone(arg)
		case "pause":
			err = f.PauseMemcached(arg)
		case "resume":
			err = f.ResumeMemcached(arg)
		case "pause-proxy":
			err = f.PauseProxy(arg)
		case "resume-proxy":
			err = f.ResumeProxy(arg)
		case "pause-origin":
			err = f.PauseOrigin(arg)
		case "resume-origin":
			err = f.ResumeOrigin(arg)
		case "stop-replica":
			err = f.StopReplica()
		case "status":
			var states map[string]fleet.ServerState
			if states, err = f.ServerStates(ctx); err == nil {
				for _, name := range fleet.Zones {
					fmt.Fprintf(out, "  zone %s: %s (%s)\n", name, states[name].Status, states[name].CheckStatus)
				}
			}
		case "memcached":
			var text string
			if text, err = memcachedCommand(ctx, f, words[1:]); err == nil {
				fmt.Fprintf(out, "  %s\n", strings.ReplaceAll(text, "\n", "\n  "))
			}
		case "help":
			fmt.Fprintln(out, help)
			continue
		default:
			err = fmt.Errorf("unknown drill %q; type help", words[0])
		}
		if err != nil {
			fmt.Fprintf(out, "  error: %v\n", err)
		} else {
			fmt.Fprintf(out, "  done: %s\n", strings.Join(words, " "))
		}
	}
}

// memcachedCommand runs a console line "memcached ..." (without the first
// word) and returns what to print.
func memcachedCommand(ctx context.Context, f *fleet.Fleet, args []string) (string, error) {
	usage := errors.New("want memcached spare | add ADDR | remove ADDR | replace OLD NEW | status")
	if len(args) == 0 {
		return "", usage
	}
	var st fleet.MemcachedState
	var err error
	switch {
	case args[0] == "spare" && len(args) == 1:
		addr, err := f.StartSpareMemcached(ctx)
		return "spare memcached node " + addr + " (memcached add " + addr + " to use it)", err
	case args[0] == "status" && len(args) == 1:
		st, err = f.MemcachedStatus(ctx)
	case args[0] == "add" && len(args) == 2:
		st, err = f.AddMemcached(ctx, args[1])
	case args[0] == "remove" && len(args) == 2:
		st, err = f.RemoveMemcached(ctx, args[1])
	case args[0] == "replace" && len(args) == 3:
		st, err = f.ReplaceMemcached(ctx, args[1], args[2])
	default:
		return "", usage
	}
	return st.String(), err
}
