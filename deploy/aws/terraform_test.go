// Package aws holds the Terraform for running edgecache on AWS (the *.tf
// files beside this one; see README.md) and a test that keeps its
// operational properties from drifting: terraform itself is not needed.
//
// The test parses every .tf file with hashicorp/hcl and checks what matters
// for availability: zones, health checks against the drain delay, idle
// timeouts, RDS Multi-AZ and replicas, memcached across zones, security
// groups, and the user_data that writes the services' environment.
// Expressions are evaluated only when they are literals or depend only on
// variable defaults; other references are checked by their source text.
package aws

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"

	"edgecache/origin"
	"edgecache/proxy"
	"edgecache/proxy/invalidator"
)

// ---- loading --------------------------------------------------------------

// module is the parsed Terraform in this folder.
type module struct {
	src       map[string][]byte // file name → content
	blocks    []*hclsyntax.Block
	variables map[string]*hclsyntax.Block
	locals    map[string]*hclsyntax.Attribute
	ctx       *hcl.EvalContext // var.* defaults, the locals that depend only on them, path.module
}

var wantFiles = []string{
	"versions.tf", "variables.tf", "network.tf", "alb.tf", "proxy.tf",
	"origin.tf", "cache.tf", "database.tf", "outputs.tf",
}

func load(t *testing.T) *module {
	t.Helper()
	names, err := filepath.Glob("*.tf")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no .tf files")
	}
	m := &module{src: map[string][]byte{}, variables: map[string]*hclsyntax.Block{}, locals: map[string]*hclsyntax.Attribute{}}
	p := hclparse.NewParser()
	for _, name := range names {
		f, diags := p.ParseHCLFile(name)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", name, diags.Error())
		}
		m.src[name] = f.Bytes
		body := f.Body.(*hclsyntax.Body)
		for _, b := range body.Blocks {
			m.blocks = append(m.blocks, b)
			switch b.Type {
			case "variable":
				if _, dup := m.variables[b.Labels[0]]; dup {
					t.Fatalf("variable %q declared twice", b.Labels[0])
				}
				m.variables[b.Labels[0]] = b
			case "locals":
				for name, a := range b.Body.Attributes {
					if _, dup := m.locals[name]; dup {
						t.Fatalf("local %q declared twice", name)
					}
					m.locals[name] = a
				}
			}
		}
	}
	m.buildContext()
	return m
}

// buildContext makes an evaluation context of the variables' literal
// defaults, path.module, tostring, and every local that evaluates in it.
func (m *module) buildContext() {
	vars := map[string]cty.Value{}
	for name, b := range m.variables {
		if a := b.Body.Attributes["default"]; a != nil {
			if v, diags := a.Expr.Value(nil); !diags.HasErrors() {
				vars[name] = v
			}
		}
	}
	m.ctx = &hcl.EvalContext{
		Variables: map[string]cty.Value{
			"var":  cty.ObjectVal(vars),
			"path": cty.ObjectVal(map[string]cty.Value{"module": cty.StringVal(".")}),
		},
		Functions: map[string]function.Function{
			"tostring": stdlib.MakeToFunc(cty.String),
		},
	}
	locals := map[string]cty.Value{}
	for progress := true; progress; {
		progress = false
		m.ctx.Variables["local"] = cty.ObjectVal(locals)
		for name, a := range m.locals {
			if _, done := locals[name]; done {
				continue
			}
			if v, diags := a.Expr.Value(m.ctx); !diags.HasErrors() && v.IsWhollyKnown() {
				locals[name] = v
				progress = true
			}
		}
	}
	m.ctx.Variables["local"] = cty.ObjectVal(locals)
}

// resources returns the resource blocks of one type, by name.
func (m *module) resources(typ string) map[string]*hclsyntax.Block {
	out := map[string]*hclsyntax.Block{}
	for _, b := range m.blocks {
		if b.Type == "resource" && b.Labels[0] == typ {
			out[b.Labels[1]] = b
		}
	}
	return out
}

func (m *module) resource(t *testing.T, typ, name string) *hclsyntax.Block {
	t.Helper()
	b := m.resources(typ)[name]
	if b == nil {
		t.Fatalf("no resource %s.%s", typ, name)
	}
	return b
}

// text is an expression's source text.
func (m *module) text(e hclsyntax.Expression) string {
	r := e.Range()
	src := m.src[r.Filename]
	return string(src[r.Start.Byte:r.End.Byte])
}

func attr(t *testing.T, b *hclsyntax.Block, name string) *hclsyntax.Attribute {
	t.Helper()
	a := b.Body.Attributes[name]
	if a == nil {
		t.Fatalf("%s %s: no attribute %q", b.Type, strings.Join(b.Labels, "."), name)
	}
	return a
}

func child(t *testing.T, b *hclsyntax.Block, typ string) *hclsyntax.Block {
	t.Helper()
	for _, c := range b.Body.Blocks {
		if c.Type == typ {
			return c
		}
	}
	t.Fatalf("%s %s: no %q block", b.Type, strings.Join(b.Labels, "."), typ)
	return nil
}

// value evaluates an expression that is a literal or depends only on
// variable defaults (and locals made of them); it fails the test otherwise.
func (m *module) value(t *testing.T, e hclsyntax.Expression) cty.Value {
	t.Helper()
	v, diags := e.Value(m.ctx)
	if diags.HasErrors() || !v.IsWhollyKnown() || v.IsNull() {
		t.Fatalf("%s:%d: %q is not a literal or a variable default: %s", e.Range().Filename, e.Range().Start.Line, m.text(e), diags.Error())
	}
	return v
}

func (m *module) number(t *testing.T, e hclsyntax.Expression) float64 {
	t.Helper()
	v := m.value(t, e)
	if v.Type() == cty.String { // "8082" from tostring(var.proxy_admin_port)
		n, err := strconv.ParseFloat(v.AsString(), 64)
		if err != nil {
			t.Fatalf("%q: %q is not a number", m.text(e), v.AsString())
		}
		return n
	}
	if v.Type() != cty.Number {
		t.Fatalf("%q: want a number, got %s", m.text(e), v.Type().FriendlyName())
	}
	f, _ := v.AsBigFloat().Float64()
	return f
}

func (m *module) str(t *testing.T, e hclsyntax.Expression) string {
	t.Helper()
	v := m.value(t, e)
	if v.Type() != cty.String {
		t.Fatalf("%q: want a string, got %s", m.text(e), v.Type().FriendlyName())
	}
	return v.AsString()
}

func (m *module) boolean(t *testing.T, e hclsyntax.Expression) bool {
	t.Helper()
	v := m.value(t, e)
	if v.Type() != cty.Bool {
		t.Fatalf("%q: want a bool, got %s", m.text(e), v.Type().FriendlyName())
	}
	return v.True()
}

func (m *module) varDefault(t *testing.T, name string) hclsyntax.Expression {
	t.Helper()
	b := m.variables[name]
	if b == nil {
		t.Fatalf("no variable %q", name)
	}
	return attr(t, b, "default").Expr
}

// wantRef checks that an attribute's source text mentions a reference.
func (m *module) wantRef(t *testing.T, b *hclsyntax.Block, name, ref string) {
	t.Helper()
	if got := m.text(attr(t, b, name).Expr); !strings.Contains(got, ref) {
		t.Errorf("%s %s: %s = %s, want a reference to %s", b.Type, strings.Join(b.Labels, "."), name, got, ref)
	}
}

// ---- the services' own defaults, read from their Config struct tags ----

func envDefault(t *testing.T, cfg any, name string) string {
	t.Helper()
	typ := reflect.TypeOf(cfg)
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Tag.Get("env") == name {
			return f.Tag.Get("envDefault")
		}
	}
	t.Fatalf("%s has no field for %s", typ, name)
	return ""
}

// settings is every variable the services read: their Config struct tags.
func settings() map[string]bool {
	names := map[string]bool{}
	for _, cfg := range []any{proxy.Config{}, origin.Config{}, invalidator.Config{}} {
		typ := reflect.TypeOf(cfg)
		for i := range typ.NumField() {
			if name := typ.Field(i).Tag.Get("env"); name != "" {
				names[name] = true
			}
		}
	}
	return names
}

func durationDefault(t *testing.T, cfg any, name string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(envDefault(t, cfg, name))
	if err != nil {
		t.Fatalf("%s default: %v", name, err)
	}
	return d
}

func portDefault(t *testing.T, cfg any, name string) float64 {
	t.Helper()
	_, port, err := net.SplitHostPort(envDefault(t, cfg, name))
	if err != nil {
		t.Fatalf("%s default: %v", name, err)
	}
	n, _ := strconv.ParseFloat(port, 64)
	return n
}

func seconds(d time.Duration) float64 { return d.Seconds() }

// ---- tests ------------------------------------------------------------------

func TestFilesParseAndDeclare(t *testing.T) {
	m := load(t)
	for _, f := range wantFiles {
		if _, ok := m.src[f]; !ok {
			t.Errorf("missing %s", f)
		}
	}
	// hclwrite.Format is the layout terraform fmt writes.
	for name, src := range m.src {
		if !bytes.Equal(hclwrite.Format(src), src) {
			t.Errorf("%s is not formatted (run terraform fmt)", name)
		}
	}

	var tf *hclsyntax.Block
	for _, b := range m.blocks {
		if b.Type == "terraform" {
			tf = b
		}
	}
	if tf == nil {
		t.Fatal("no terraform block")
	}
	providers := m.value(t, attr(t, child(t, tf, "required_providers"), "aws").Expr)
	if got := providers.GetAttr("version").AsString(); !strings.HasPrefix(got, "~> 5") {
		t.Errorf("aws provider version = %q, want ~> 5", got)
	}

	for name, b := range m.variables {
		if b.Body.Attributes["description"] == nil || b.Body.Attributes["type"] == nil {
			t.Errorf("variable %q needs a description and a type", name)
		}
		if name != "ami_id" && b.Body.Attributes["default"] == nil {
			t.Errorf("variable %q has no default (only ami_id may lack one)", name)
		}
	}
	for _, want := range []string{"alb_dns_name", "memcached_endpoints", "rds_primary_endpoint", "rds_replica_endpoints"} {
		found := false
		for _, b := range m.blocks {
			found = found || b.Type == "output" && b.Labels[0] == want
		}
		if !found {
			t.Errorf("no output %q", want)
		}
	}
}

func TestSubnetsSpanZones(t *testing.T) {
	m := load(t)
	if n := m.number(t, m.varDefault(t, "az_count")); n < 2 {
		t.Errorf("az_count default = %v, want >= 2", n)
	}
	if n := m.value(t, m.varDefault(t, "azs")).LengthInt(); n != 0 && n < 2 {
		t.Errorf("azs default has %d zones, want none (use az_count) or >= 2", n)
	}
	azs := m.locals["azs"]
	if azs == nil {
		t.Fatal("no local.azs")
	}
	if got := m.text(azs.Expr); !strings.Contains(got, "var.azs") || !strings.Contains(got, "var.az_count") {
		t.Errorf("local.azs = %s, want it from var.azs or the first var.az_count zones", got)
	}
	subnets := m.resources("aws_subnet")
	for _, name := range []string{"public", "private"} {
		s := subnets[name]
		if s == nil {
			t.Fatalf("no aws_subnet.%s", name)
		}
		if got := m.text(attr(t, s, "count").Expr); got != "length(local.azs)" {
			t.Errorf("aws_subnet.%s count = %s, want length(local.azs): one per zone", name, got)
		}
		if got := m.text(attr(t, s, "availability_zone").Expr); got != "local.azs[count.index]" {
			t.Errorf("aws_subnet.%s availability_zone = %s, want local.azs[count.index]", name, got)
		}
	}
	if len(subnets) != 2 {
		t.Errorf("aws_subnet resources: %d, want public and private only", len(subnets))
	}
	m.wantRef(t, m.resource(t, "aws_lb", "public"), "subnets", "aws_subnet.public[*].id")
	m.wantRef(t, m.resource(t, "aws_lb", "origin"), "subnets", "aws_subnet.private[*].id")
	for _, g := range []string{"proxy", "origin"} {
		asg := m.resource(t, "aws_autoscaling_group", g)
		m.wantRef(t, asg, "vpc_zone_identifier", "aws_subnet.private[*].id")
		if min, zones := m.number(t, attr(t, asg, "min_size").Expr), m.number(t, m.varDefault(t, "az_count")); min < zones {
			t.Errorf("aws_autoscaling_group.%s min_size = %v, want at least one per zone (%v)", g, min, zones)
		}
	}
	for _, r := range []struct{ typ, name string }{{"aws_elasticache_subnet_group", "memcached"}, {"aws_db_subnet_group", "main"}} {
		m.wantRef(t, m.resource(t, r.typ, r.name), "subnet_ids", "aws_subnet.private[*].id")
	}
}

func TestProxyHealthCheckAndDrain(t *testing.T) {
	m := load(t)
	tg := m.resource(t, "aws_lb_target_group", "proxy")
	hc := child(t, tg, "health_check")

	if got := m.str(t, attr(t, hc, "path").Expr); got != "/readyz" {
		t.Errorf("proxy health check path = %q, want /readyz", got)
	}
	if got := m.str(t, attr(t, hc, "protocol").Expr); got != "HTTP" {
		t.Errorf("proxy health check protocol = %q, want HTTP", got)
	}
	// The health check goes to the admin port, which is where /readyz lives,
	// and the traffic to the client port; both match the proxy's defaults.
	m.wantRef(t, hc, "port", "var.proxy_admin_port")
	if got, want := m.number(t, attr(t, hc, "port").Expr), portDefault(t, proxy.Config{}, "PROXY_ADMIN_LISTEN"); got != want {
		t.Errorf("proxy health check port = %v, want the admin port %v (PROXY_ADMIN_LISTEN default)", got, want)
	}
	m.wantRef(t, tg, "port", "var.proxy_port")
	if got, want := m.number(t, attr(t, tg, "port").Expr), portDefault(t, proxy.Config{}, "PROXY_LISTEN"); got != want {
		t.Errorf("proxy target group port = %v, want %v (PROXY_LISTEN default)", got, want)
	}

	interval := m.number(t, attr(t, hc, "interval").Expr)
	timeout := m.number(t, attr(t, hc, "timeout").Expr)
	unhealthy := m.number(t, attr(t, hc, "unhealthy_threshold").Expr)
	healthy := m.number(t, attr(t, hc, "healthy_threshold").Expr)
	if interval > 10 || healthy > 3 || unhealthy > 3 || timeout >= interval {
		t.Errorf("proxy health check interval %v s, timeout %v s, thresholds %v/%v: want interval <= 10 s (default 30 s is too slow to drain), thresholds <= 3, timeout < interval",
			interval, timeout, healthy, unhealthy)
	}

	// A proxy that got SIGTERM fails /readyz for PROXY_DRAIN_DELAY while it
	// still serves; the ALB must notice within that time.
	drainVar := attr(t, m.variables["proxy_drain_delay_seconds"], "default").Expr
	drain := m.number(t, drainVar)
	if detect := interval*unhealthy + timeout; detect >= drain {
		t.Errorf("the ALB needs up to %v s to mark a draining proxy unhealthy, but proxy_drain_delay_seconds = %v s", detect, drain)
	}
	if def := seconds(durationDefault(t, proxy.Config{}, "PROXY_DRAIN_DELAY")); drain < def {
		t.Errorf("proxy_drain_delay_seconds = %v, below the proxy's own default %v s", drain, def)
	}

	// Deregistration: longer than the drain delay plus the longest request,
	// much shorter than the 300 s default.
	dereg := m.number(t, attr(t, tg, "deregistration_delay").Expr)
	longest := seconds(durationDefault(t, proxy.Config{}, "PROXY_ORIGIN_TIMEOUT") + durationDefault(t, proxy.Config{}, "PROXY_COALESCE_WAIT"))
	if dereg >= 300 {
		t.Errorf("proxy deregistration_delay = %v, want < 300 (the default)", dereg)
	}
	if def := seconds(durationDefault(t, proxy.Config{}, "PROXY_DRAIN_DELAY")); dereg <= def {
		t.Errorf("proxy deregistration_delay = %v, want > PROXY_DRAIN_DELAY default %v s", dereg, def)
	}
	if dereg <= drain+longest {
		t.Errorf("proxy deregistration_delay = %v, want > drain delay %v s + longest request %v s", dereg, drain, longest)
	}

	// systemd must let the drain and the shutdown finish before SIGKILL.
	stop := m.number(t, m.locals["proxy_stop_timeout"].Expr)
	shutdown := m.number(t, m.varDefault(t, "proxy_shutdown_timeout_seconds"))
	if stop <= drain+shutdown {
		t.Errorf("local.proxy_stop_timeout = %v, want > drain %v + shutdown %v", stop, drain, shutdown)
	}
}

func TestOriginHealthCheckAndDrain(t *testing.T) {
	m := load(t)
	tg := m.resource(t, "aws_lb_target_group", "origin")
	hc := child(t, tg, "health_check")
	if got := m.str(t, attr(t, hc, "path").Expr); got != "/readyz" {
		t.Errorf("origin health check path = %q, want /readyz", got)
	}
	if got := m.text(attr(t, hc, "port").Expr); got != `"traffic-port"` && !strings.Contains(got, "var.origin_port") {
		t.Errorf("origin health check port = %s, want the origin port", got)
	}
	m.wantRef(t, tg, "port", "var.origin_port")
	if got, want := m.number(t, attr(t, tg, "port").Expr), portDefault(t, origin.Config{}, "ORIGIN_LISTEN"); got != want {
		t.Errorf("origin target group port = %v, want %v (ORIGIN_LISTEN default)", got, want)
	}
	interval := m.number(t, attr(t, hc, "interval").Expr)
	timeout := m.number(t, attr(t, hc, "timeout").Expr)
	unhealthy := m.number(t, attr(t, hc, "unhealthy_threshold").Expr)
	drain := m.number(t, m.varDefault(t, "origin_drain_delay_seconds"))
	if detect := interval*unhealthy + timeout; detect >= drain {
		t.Errorf("the ALB needs up to %v s to mark a draining origin unhealthy, but origin_drain_delay_seconds = %v s", detect, drain)
	}
	shutdown := m.number(t, m.varDefault(t, "origin_shutdown_timeout_seconds"))
	if shutdown <= 0 {
		t.Errorf("origin_shutdown_timeout_seconds = %v, want > 0", shutdown)
	}
	dereg := m.number(t, attr(t, tg, "deregistration_delay").Expr)
	if dereg >= 300 || dereg <= drain {
		t.Errorf("origin deregistration_delay = %v, want between the drain delay %v and 300", dereg, drain)
	}
	if stop := m.number(t, m.locals["origin_stop_timeout"].Expr); stop <= drain+shutdown {
		t.Errorf("local.origin_stop_timeout = %v, want > ORIGIN_DRAIN_DELAY + ORIGIN_SHUTDOWN_TIMEOUT (the timeout counts after the delay) %v", stop, drain+shutdown)
	}
	// During an RDS failover every origin's /readyz fails at once: the
	// group must not replace them all for it.
	if got := m.str(t, attr(t, m.resource(t, "aws_autoscaling_group", "origin"), "health_check_type").Expr); got != "EC2" {
		t.Errorf("origin Auto Scaling group health_check_type = %q, want EC2", got)
	}
}

func TestIdleTimeouts(t *testing.T) {
	m := load(t)
	proxyIdle := seconds(durationDefault(t, proxy.Config{}, "PROXY_IDLE_TIMEOUT"))
	originIdle := seconds(durationDefault(t, origin.Config{}, "ORIGIN_IDLE_TIMEOUT"))
	public := m.number(t, attr(t, m.resource(t, "aws_lb", "public"), "idle_timeout").Expr)
	if public >= proxyIdle {
		t.Errorf("public ALB idle_timeout = %v s, want below PROXY_IDLE_TIMEOUT default %v s", public, proxyIdle)
	}
	internal := m.number(t, attr(t, m.resource(t, "aws_lb", "origin"), "idle_timeout").Expr)
	if internal >= originIdle {
		t.Errorf("origin ALB idle_timeout = %v s, want below ORIGIN_IDLE_TIMEOUT default %v s", internal, originIdle)
	}
	if pooled := seconds(durationDefault(t, proxy.Config{}, "PROXY_ORIGIN_IDLE_CONN_TIME")); pooled >= internal {
		t.Errorf("PROXY_ORIGIN_IDLE_CONN_TIME %v s must stay below the origin ALB's idle_timeout %v s", pooled, internal)
	}
	// The comparison above holds only while user_data leaves the idle
	// timeouts at the binaries' defaults.
	for _, f := range templateFiles(t) {
		b, _ := os.ReadFile(f)
		for _, v := range []string{"PROXY_IDLE_TIMEOUT=", "ORIGIN_IDLE_TIMEOUT="} {
			if strings.Contains(string(b), v) {
				t.Errorf("%s sets %s: check it against the ALB idle timeout here", f, v)
			}
		}
	}
}

func TestLoadBalancers(t *testing.T) {
	m := load(t)
	if m.boolean(t, attr(t, m.resource(t, "aws_lb", "public"), "internal").Expr) {
		t.Error("public ALB is internal")
	}
	if !m.boolean(t, attr(t, m.resource(t, "aws_lb", "origin"), "internal").Expr) {
		t.Error("origin ALB is not internal")
	}
	http := m.resource(t, "aws_lb_listener", "http")
	if got := m.number(t, attr(t, http, "port").Expr); got != 80 {
		t.Errorf("http listener port = %v", got)
	}
	https := m.resource(t, "aws_lb_listener", "https")
	if got := m.number(t, attr(t, https, "port").Expr); got != 443 {
		t.Errorf("https listener port = %v", got)
	}
	m.wantRef(t, https, "certificate_arn", "var.certificate_arn")
	m.wantRef(t, https, "count", "var.certificate_arn")
	m.wantRef(t, m.resource(t, "aws_lb_listener", "origin"), "load_balancer_arn", "aws_lb.origin")

	for _, g := range []string{"proxy", "origin"} {
		m.wantRef(t, m.resource(t, "aws_autoscaling_group", g), "target_group_arns", "aws_lb_target_group."+g+".arn")
		found := false
		for _, p := range m.resources("aws_autoscaling_policy") {
			if !strings.Contains(m.text(attr(t, p, "autoscaling_group_name").Expr), "aws_autoscaling_group."+g+".") {
				continue
			}
			tt := child(t, p, "target_tracking_configuration")
			metric := m.str(t, attr(t, child(t, tt, "predefined_metric_specification"), "predefined_metric_type").Expr)
			found = m.str(t, attr(t, p, "policy_type").Expr) == "TargetTrackingScaling" &&
				(metric == "ASGAverageCPUUtilization" || metric == "ALBRequestCountPerTarget")
		}
		if !found {
			t.Errorf("no target-tracking policy (CPU or ALBRequestCountPerTarget) for aws_autoscaling_group.%s", g)
		}
	}
	// PROXY_ORIGINS is the internal ALB.
	if got := m.text(m.templateArgs(t, "proxy_user_data")["origins"]); !strings.Contains(got, "aws_lb.origin.dns_name") || !strings.Contains(got, "var.origin_port") {
		t.Errorf("proxy user_data origins = %s, want the internal origin ALB", got)
	}
}

func TestDatabase(t *testing.T) {
	m := load(t)
	var primary *hclsyntax.Block
	var replicas []*hclsyntax.Block
	for _, b := range m.resources("aws_db_instance") {
		if b.Body.Attributes["replicate_source_db"] != nil {
			replicas = append(replicas, b)
		} else {
			primary = b
		}
	}
	if primary == nil || primary.Labels[1] != "primary" {
		t.Fatal("want one aws_db_instance.primary (without replicate_source_db)")
	}
	if got := m.str(t, attr(t, primary, "engine").Expr); got != "mysql" {
		t.Errorf("engine = %q", got)
	}
	if got := m.str(t, attr(t, primary, "engine_version").Expr); !strings.HasPrefix(got, "8.") {
		t.Errorf("engine_version = %q, want MySQL 8", got)
	}
	if !m.boolean(t, attr(t, primary, "multi_az").Expr) {
		t.Error("primary multi_az is not true")
	}
	if !m.boolean(t, attr(t, primary, "storage_encrypted").Expr) {
		t.Error("primary storage_encrypted is not true")
	}
	if m.boolean(t, attr(t, primary, "publicly_accessible").Expr) {
		t.Error("primary is publicly accessible")
	}
	if n := m.number(t, attr(t, primary, "backup_retention_period").Expr); n < 1 {
		t.Errorf("backup_retention_period = %v, want backups on (replicas need them)", n)
	}
	m.wantRef(t, primary, "deletion_protection", "var.")
	m.wantRef(t, primary, "parameter_group_name", "aws_db_parameter_group.")
	m.wantRef(t, primary, "password", "random_password.")
	m.wantRef(t, m.resource(t, "aws_secretsmanager_secret_version", "db_password"), "secret_string", "random_password.")
	if v := m.variables["db_password"]; v != nil {
		t.Error("variable db_password: the password is generated (random_password) and kept in Secrets Manager")
	}

	if len(replicas) == 0 {
		t.Fatal("no read replica (aws_db_instance with replicate_source_db)")
	}
	for _, r := range replicas {
		m.wantRef(t, r, "replicate_source_db", "aws_db_instance.primary.")
		if !m.boolean(t, attr(t, r, "storage_encrypted").Expr) {
			t.Errorf("replica %s storage_encrypted is not true", r.Labels[1])
		}
		m.wantRef(t, r, "availability_zone", "local.replica_azs")
	}
	// The origin's migrations create triggers: with the binary log on and no
	// SUPER for the RDS user, that needs log_bin_trust_function_creators,
	// safe with row-based logging. The replicas use the same parameters.
	groups := m.resources("aws_db_parameter_group")
	if len(groups) != 1 {
		t.Fatalf("%d aws_db_parameter_group resources, want one for the primary and the replicas", len(groups))
	}
	for name, group := range groups {
		params := map[string]string{}
		for _, b := range group.Body.Blocks {
			if b.Type == "parameter" {
				params[m.str(t, attr(t, b, "name").Expr)] = m.str(t, attr(t, b, "value").Expr)
			}
		}
		for param, want := range map[string]string{"log_bin_trust_function_creators": "1", "binlog_format": "ROW"} {
			if got := params[param]; got != want {
				t.Errorf("aws_db_parameter_group.%s: %s = %q, want %q", name, param, got, want)
			}
		}
		for _, db := range append([]*hclsyntax.Block{primary}, replicas...) {
			m.wantRef(t, db, "parameter_group_name", "aws_db_parameter_group."+name+".")
		}
	}
	if got := m.text(m.locals["replica_azs"].Expr); !strings.Contains(got, "aws_db_instance.primary.availability_zone") {
		t.Errorf("local.replica_azs = %s, want the zones other than the primary's", got)
	}
	if n := m.number(t, m.varDefault(t, "db_replica_count")); n < 1 {
		t.Errorf("db_replica_count default = %v, want >= 1", n)
	}

	// The DSN options are the origin's own default ones (origin/config.go), so the
	// two cannot drift apart.
	opts := m.str(t, m.varDefault(t, "db_dsn_options"))
	if want := envDefaultQuery(t); opts != want {
		t.Errorf("db_dsn_options default = %q\nwant the origin's default DSN options %q", opts, want)
	}
	for _, want := range []string{"parseTime=true", "timeout=", "readTimeout=", "writeTimeout=", "rejectReadOnly=true"} {
		if !strings.Contains(opts, want) {
			t.Errorf("db_dsn_options lacks %s", want)
		}
	}
}

func TestMemcached(t *testing.T) {
	m := load(t)
	c := m.resource(t, "aws_elasticache_cluster", "memcached")
	if got := m.str(t, attr(t, c, "engine").Expr); got != "memcached" {
		t.Errorf("engine = %q", got)
	}
	if got := m.str(t, attr(t, c, "az_mode").Expr); got != "cross-az" {
		t.Errorf("az_mode = %q, want cross-az", got)
	}
	if n := m.number(t, attr(t, c, "num_cache_nodes").Expr); n < 3 {
		t.Errorf("num_cache_nodes default = %v, want >= 3", n)
	}
	if got := m.number(t, attr(t, c, "port").Expr); got != 11211 {
		t.Errorf("port = %v", got)
	}
	m.wantRef(t, c, "preferred_availability_zones", "local.azs")
	// The node endpoints are the seeds on both sides; the invalidator's
	// decider follows the cluster through its configuration endpoint.
	for _, local := range []string{"proxy_user_data", "origin_user_data"} {
		if got := m.text(m.templateArgs(t, local)["memcached"]); !strings.Contains(got, "aws_elasticache_cluster.memcached.cache_nodes") {
			t.Errorf("%s memcached = %s, want the node endpoints", local, got)
		}
	}
	if got := m.text(m.templateArgs(t, "origin_user_data")["memcached_discovery"]); got != "aws_elasticache_cluster.memcached.configuration_endpoint" {
		t.Errorf("origin_user_data memcached_discovery = %q, want the cluster's configuration endpoint", got)
	}
}

// ingressRule is one ingress permission, whichever way it is written.
type ingressRule struct {
	where         string
	group         string // source text of the group it opens
	from, to      string // source text of the ports
	cidrs         []string
	fromGroupText string
}

func (m *module) ingressRules(t *testing.T) []ingressRule {
	t.Helper()
	get := func(b *hclsyntax.Block, name string) string {
		if a := b.Body.Attributes[name]; a != nil {
			return m.text(a.Expr)
		}
		return ""
	}
	cidrs := func(b *hclsyntax.Block) []string {
		var out []string
		for _, name := range []string{"cidr_ipv4", "cidr_ipv6", "cidr_blocks", "ipv6_cidr_blocks", "prefix_list_id", "prefix_list_ids"} {
			if a := b.Body.Attributes[name]; a != nil {
				text := m.text(a.Expr)
				if v, diags := a.Expr.Value(m.ctx); !diags.HasErrors() && v.IsWhollyKnown() {
					text += " = " + v.GoString()
				}
				out = append(out, text)
			}
		}
		return out
	}
	var rules []ingressRule
	for name, b := range m.resources("aws_vpc_security_group_ingress_rule") {
		rules = append(rules, ingressRule{"aws_vpc_security_group_ingress_rule." + name, get(b, "security_group_id"), get(b, "from_port"), get(b, "to_port"), cidrs(b), get(b, "referenced_security_group_id")})
	}
	for name, b := range m.resources("aws_security_group_rule") {
		if get(b, "type") == `"ingress"` {
			rules = append(rules, ingressRule{"aws_security_group_rule." + name, get(b, "security_group_id"), get(b, "from_port"), get(b, "to_port"), cidrs(b), get(b, "source_security_group_id")})
		}
	}
	for name, b := range m.resources("aws_security_group") {
		for _, in := range b.Body.Blocks {
			if in.Type == "ingress" {
				rules = append(rules, ingressRule{"aws_security_group." + name + " ingress", "aws_security_group." + name + ".id", get(in, "from_port"), get(in, "to_port"), cidrs(in), get(in, "security_groups")})
			}
		}
		if a := b.Body.Attributes["ingress"]; a != nil {
			t.Errorf("aws_security_group.%s: ingress as an attribute; use aws_vpc_security_group_ingress_rule", name)
		}
	}
	return rules
}

func TestSecurityGroups(t *testing.T) {
	m := load(t)
	rules := m.ingressRules(t)
	if len(rules) == 0 {
		t.Fatal("no ingress rules found")
	}
	open := regexp.MustCompile(`0\.0\.0\.0/0|::/0`)
	for _, r := range rules {
		if len(r.cidrs) == 0 {
			continue
		}
		if strings.Contains(r.from+r.to, "admin_port") {
			t.Errorf("%s: the admin port is open to a CIDR (%v); only security groups may reach it", r.where, r.cidrs)
		}
		if !open.MatchString(strings.Join(r.cidrs, " ")) {
			continue
		}
		if r.group != "aws_security_group.alb.id" || r.from != r.to || (r.from != "80" && r.from != "443") {
			t.Errorf("%s: open to the internet (%v) on %s-%s of %s; only the public ALB's 80 and 443 may be", r.where, r.cidrs, r.from, r.to, r.group)
		}
	}
	// The edges the system needs, each from one group to another.
	edges := []struct{ to, port, from string }{
		{"aws_security_group.proxy.id", "var.proxy_port", "aws_security_group.alb.id"},
		{"aws_security_group.proxy.id", "var.proxy_admin_port", "aws_security_group.alb.id"},
		{"aws_security_group.origin_alb.id", "var.origin_port", "aws_security_group.proxy.id"},
		{"aws_security_group.origin.id", "var.origin_port", "aws_security_group.origin_alb.id"},
		{"aws_security_group.db.id", "3306", "aws_security_group.origin.id"},
		{"aws_security_group.memcached.id", "11211", "aws_security_group.proxy.id"},
		{"aws_security_group.memcached.id", "11211", "aws_security_group.origin.id"},            // the invalidator
		{"aws_security_group.proxy.id", "var.proxy_admin_port", "aws_security_group.proxy.id"},  // lease invalidations
		{"aws_security_group.proxy.id", "var.proxy_admin_port", "aws_security_group.origin.id"}, // from the invalidator
	}
	for _, e := range edges {
		found := false
		for _, r := range rules {
			found = found || r.group == e.to && r.from == e.port && r.to == e.port && r.fromGroupText == e.from
		}
		if !found {
			t.Errorf("no ingress to %s on %s from %s", e.to, e.port, e.from)
		}
	}
	// Nothing but the ALB may reach the proxies, the origin ALB, the origins,
	// the database or memcached from anywhere but a security group.
	for _, r := range rules {
		if r.group != "aws_security_group.alb.id" && len(r.cidrs) > 0 {
			t.Errorf("%s: ingress to %s from a CIDR (%v); use a security group", r.where, r.group, r.cidrs)
		}
	}
}

// templateArgs returns the second argument of the templatefile() call in a
// local, by key.
func (m *module) templateArgs(t *testing.T, local string) map[string]hclsyntax.Expression {
	t.Helper()
	_, args := m.templateCall(t, local)
	return args
}

func (m *module) templateCall(t *testing.T, local string) (string, map[string]hclsyntax.Expression) {
	t.Helper()
	a := m.locals[local]
	if a == nil {
		t.Fatalf("no local.%s", local)
	}
	call, ok := a.Expr.(*hclsyntax.FunctionCallExpr)
	if !ok || call.Name != "templatefile" || len(call.Args) != 2 {
		t.Fatalf("local.%s = %s, want templatefile(path, {...})", local, m.text(a.Expr))
	}
	path := m.str(t, call.Args[0])
	obj, ok := call.Args[1].(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatalf("local.%s: templatefile's variables are not an object literal", local)
	}
	args := map[string]hclsyntax.Expression{}
	for _, item := range obj.Items {
		k, diags := item.KeyExpr.Value(nil)
		if diags.HasErrors() || k.Type() != cty.String {
			t.Fatalf("local.%s: key %s is not a name", local, m.text(item.KeyExpr))
		}
		args[k.AsString()] = item.ValueExpr
	}
	return path, args
}

func templateFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("templates/*.tftpl")
	if err != nil || len(files) == 0 {
		t.Fatalf("no templates/*.tftpl (%v)", err)
	}
	return files
}

// fixtures stand in for values known only after apply when rendering a
// template; other arguments are evaluated from variable defaults, or get a
// placeholder.
var fixtures = map[string]cty.Value{
	"origins":             cty.StringVal("http://internal-origin.example:8081"),
	"memcached":           cty.StringVal("m1.example:11211,m2.example:11211,m3.example:11211"),
	"memcached_discovery": cty.StringVal("edgecache-memcached.x1y2z3.cfg.use1.cache.amazonaws.com:11211"),
	"secret_arn":          cty.StringVal("arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"),
	"peer_secret_arn":     cty.StringVal("arn:aws:secretsmanager:us-east-1:123456789012:secret:peer-AbCdEf"),
	"primary_endpoint":    cty.StringVal("primary.example:3306"),
	"replica_endpoints":   cty.ListVal([]cty.Value{cty.StringVal("replica-1.example:3306"), cty.StringVal("replica-2.example:3306")}),
}

func TestUserData(t *testing.T) {
	m := load(t)
	cases := []struct {
		launchTemplate, local string
		envPrefix             string
		want                  []string // regexps the rendered script must match
		args                  map[string]string
	}{
		{
			"proxy", "proxy_user_data", "PROXY_",
			[]string{
				`(?m)^PROXY_ORIGINS=http://internal-origin\.example:8081$`,
				`(?m)^PROXY_MEMCACHED=m1\.example:11211,m2\.example:11211,m3\.example:11211$`,
				`(?m)^PROXY_TRUST_FORWARDED=true$`,
				`(?m)^PROXY_TRUSTED_PROXIES=10\.\d+\.0\.0/16$`,
				`(?m)^PROXY_LISTEN=0\.0\.0\.0:8080$`,
				`(?m)^PROXY_ADMIN_LISTEN=0\.0\.0\.0:8082$`,
				`(?m)^PROXY_DRAIN_DELAY=\d+s$`,
				`(?m)^PROXY_SHUTDOWN_TIMEOUT=\d+s$`,
				`(?m)^ExecStart=/usr/local/bin/proxy$`,
				// Invalidation leases: the secret, the address peers reach, the duration.
				`secretsmanager get-secret-value`,
				`(?m)^PROXY_PEER_SECRET=\$PEER_SECRET$`,
				`(?m)^PROXY_PEER_ADVERTISE=\$PRIVATE_IP:8082$`,
				`meta-data/local-ipv4`,
				`(?m)^PROXY_LEASE_DURATION=1s$`,
			},
			map[string]string{"origins": "aws_lb.origin.dns_name", "memcached": "aws_elasticache_cluster.memcached", "drain_delay": "var.proxy_drain_delay_seconds", "stop_timeout": "local.proxy_stop_timeout",
				"peer_secret_arn": "aws_secretsmanager_secret.peer_secret.arn", "lease_duration": "var.lease_duration"},
		},
		{
			"origin", "origin_user_data", "ORIGIN_",
			[]string{
				`(?m)^ORIGIN_MYSQL_DSN=\$PRIMARY_DSN$`,
				`(?m)^ORIGIN_MYSQL_REPLICA_DSNS=\$REPLICA_DSNS$`,
				`(?m)^PRIMARY_DSN="edgecache:\$DB_PASSWORD@tcp\(primary\.example:3306\)/edgecache\?\$DSN_OPTIONS"$`,
				`tcp\(replica-1\.example:3306\)`, `tcp\(replica-2\.example:3306\)`,
				`(?m)^DSN_OPTIONS='` + regexp.QuoteMeta(envDefaultQuery(t)) + `'$`,
				`(?m)^ORIGIN_LISTEN=0\.0\.0\.0:8081$`,
				`(?m)^ORIGIN_DRAIN_DELAY=\d+s$`,
				`(?m)^ORIGIN_SHUTDOWN_TIMEOUT=\d+s$`,
				`secretsmanager get-secret-value`,
				`(?m)^ExecStart=/usr/local/bin/origin$`,
				// The durable invalidator beside every origin.
				`(?m)^INVALIDATOR_MYSQL_DSN=\$PRIMARY_DSN$`,
				`(?m)^INVALIDATOR_MEMCACHED=m1\.example:11211,m2\.example:11211,m3\.example:11211$`,
				`(?m)^INVALIDATOR_MEMCACHED_DISCOVERY=edgecache-memcached\.x1y2z3\.cfg\.use1\.cache\.amazonaws\.com:11211$`,
				`(?m)^ExecStart=/usr/local/bin/invalidator$`,
				`systemctl enable --now edgecache-origin.service edgecache-invalidator.service`,
				`(?m)^INVALIDATOR_PEER_SECRET=\$PEER_SECRET$`,
				`(?m)^INVALIDATOR_LEASE_DURATION=1s$`,
			},
			map[string]string{"peer_secret_arn": "aws_secretsmanager_secret.peer_secret.arn", "lease_duration": "var.lease_duration", "memcached": "aws_elasticache_cluster.memcached", "memcached_discovery": "aws_elasticache_cluster.memcached.configuration_endpoint", "primary_endpoint": "aws_db_instance.primary.endpoint", "replica_endpoints": "aws_db_instance.replica[*].endpoint", "secret_arn": "aws_secretsmanager_secret.db_password.arn", "dsn_options": "var.db_dsn_options", "stop_timeout": "local.origin_stop_timeout"},
		},
	}
	used := map[string]bool{}
	known := settings()
	for _, c := range cases {
		t.Run(c.launchTemplate, func(t *testing.T) {
			lt := m.resource(t, "aws_launch_template", c.launchTemplate)
			m.wantRef(t, lt, "user_data", "local."+c.local)
			m.wantRef(t, lt, "image_id", "var.ami_id")
			if got := m.str(t, attr(t, child(t, lt, "metadata_options"), "http_tokens").Expr); got != "required" {
				t.Errorf("http_tokens = %q, want required (IMDSv2)", got)
			}

			path, args := m.templateCall(t, c.local)
			used[filepath.Clean(path)] = true
			for k, ref := range c.args {
				if a := args[k]; a == nil || !strings.Contains(m.text(a), ref) {
					t.Errorf("templatefile %s: %s should be %s", path, k, ref)
				}
			}
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			tmpl, diags := hclsyntax.ParseTemplate(src, path, hcl.InitialPos)
			if diags.HasErrors() {
				t.Fatalf("%s: %s", path, diags.Error())
			}
			// Every template variable is passed, and nothing else.
			need := map[string]bool{}
			for _, tr := range tmpl.Variables() {
				need[tr.RootName()] = true
			}
			for k := range need {
				if args[k] == nil {
					t.Errorf("%s uses ${%s}, which templatefile() in local.%s does not pass", path, k, c.local)
				}
			}
			for k := range args {
				if !need[k] {
					t.Errorf("local.%s passes %s, which %s does not use", c.local, k, path)
				}
			}

			vars := map[string]cty.Value{}
			for k, e := range args {
				f, isFixture := fixtures[k]
				switch v, diags := e.Value(m.ctx); {
				case isFixture:
					vars[k] = f
				case k == "extra_env":
					vars[k] = cty.MapVal(map[string]cty.Value{c.envPrefix + "EXTRA_TEST": cty.StringVal("extra-value")})
				case !diags.HasErrors() && v.IsWhollyKnown():
					vars[k] = v
				default:
					vars[k] = cty.StringVal("placeholder-" + k)
				}
			}
			out, diags := tmpl.Value(&hcl.EvalContext{Variables: vars})
			if diags.HasErrors() {
				t.Fatalf("rendering %s: %s", path, diags.Error())
			}
			script := out.AsString()
			want := append([]string{
				`(?m)^` + c.envPrefix + `EXTRA_TEST=extra-value$`,
				`(?m)^KillSignal=SIGTERM$`,
				`(?m)^TimeoutStopSec=\d+$`,
				`(?m)^EnvironmentFile=/etc/edgecache/`,
				`systemctl enable --now edgecache-` + c.launchTemplate + `\.service`,
			}, c.want...)
			for _, re := range want {
				if !regexp.MustCompile(re).MatchString(script) {
					t.Errorf("rendered %s does not match %s", path, re)
				}
			}
			// Every variable the script sets is one a service reads: a
			// misspelt name would be ignored, its setting left at the default.
			for _, set := range regexp.MustCompile(`(?m)^((?:PROXY|ORIGIN|INVALIDATOR)_[A-Z0-9_]+)=`).FindAllStringSubmatch(script, -1) {
				if name := set[1]; name != c.envPrefix+"EXTRA_TEST" && !known[name] {
					t.Errorf("rendered %s sets %s, which no service reads", path, name)
				}
			}
			if strings.Contains(script, "placeholder-") {
				t.Errorf("rendered %s has an unexpected template value: %s", path, regexp.MustCompile(`placeholder-\w+`).FindString(script))
			}
			if bash, err := exec.LookPath("bash"); err == nil {
				cmd := exec.Command(bash, "-n")
				cmd.Stdin = strings.NewReader(script)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("rendered %s is not valid bash: %v\n%s", path, err, out)
				}
			}
		})
	}
	var unused []string
	for _, f := range templateFiles(t) {
		if !used[filepath.Clean(f)] {
			unused = append(unused, f)
		}
	}
	sort.Strings(unused)
	if len(unused) > 0 {
		t.Errorf("templates no launch template uses: %v", unused)
	}
}

// envDefaultQuery is the options part of the origin's default DSN.
func envDefaultQuery(t *testing.T) string {
	t.Helper()
	dsn := envDefault(t, origin.Config{}, "ORIGIN_MYSQL_DSN")
	i := strings.IndexByte(dsn, '?')
	if i < 0 {
		t.Fatal("origin default DSN has no options")
	}
	return dsn[i+1:]
}
