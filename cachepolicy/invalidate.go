package cachepolicy

import "net/url"

// Invalidates reports whether a response to a request with this method
// invalidates stored responses (RFC 9111 §4.4): the method is unsafe
// (anything but GET, HEAD, OPTIONS, TRACE, including unknown methods) and
// the status is not an error (2xx or 3xx). The target URI is then
// invalidated (AppendKey of the request), and so are Location and
// Content-Location when they share its origin (AppendLocationKey).
func Invalidates(method []byte, status int) bool {
	switch string(method) {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return false
	}
	return status >= 200 && status < 400
}

// AppendLocationKey appends to dst the primary key (AppendKey) of the URI a
// Location or Content-Location value names, resolved against the request's
// target (scheme, host, raw path), and reports whether it shares the
// request's origin. A different origin must not be invalidated (RFC 9111
// §4.4: it would let one origin purge another's entries); dst is returned
// unchanged then, and for unparsable values.
func AppendLocationKey(dst, scheme, host, path, location []byte) ([]byte, bool) {
	location = trimSpace(location)
	if len(location) == 0 {
		return dst, false
	}
	base, err := url.Parse(string(scheme) + "://" + string(host) + string(path))
	if err != nil {
		return dst, false
	}
	ref, err := url.Parse(string(location))
	if err != nil {
		return dst, false
	}
	u := base.ResolveReference(ref)
	origin := AppendKey(nil, scheme, host, nil, nil)
	target := AppendKey(nil, []byte(u.Scheme), []byte(u.Host), nil, nil)
	if u.User != nil || u.Opaque != "" || string(origin) != string(target) {
		return dst, false
	}
	return AppendKey(dst, []byte(u.Scheme), []byte(u.Host), []byte(u.EscapedPath()), []byte(u.RawQuery)), true
}
