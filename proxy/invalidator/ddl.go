package invalidator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Schema changes (doc.go, "Schema changes"): triggers log rows, and
// TRUNCATE, DROP, RENAME or a restored backup change a table's data without
// a row. The leader finds them by comparing each watched table's InnoDB
// table id (a new one for every TRUNCATE and CREATE; CREATE_TIME does not
// move on TRUNCATE in MariaDB 10.11) and triggers with what invalidation_ddl
// says was last invalidated.

// logTable is always watched: a TRUNCATE of it loses rows not yet applied.
const logTable = "invalidation_log"

// tableState is what the leader compares of a watched table.
type tableState struct {
	id       uint64 // InnoDB's table id; 0: no such table
	triggers string // every trigger on it, name@created, sorted, comma-separated
}

// schemaState is every watched table's state, by name.
type schemaState map[string]tableState

// ddlWatch is the leader's watch on the schema; a new one starts with every
// term of leadership, so a new leader compares with the stored state and
// finds what changed while nobody led.
type ddlWatch struct {
	inv  *Invalidator
	view string // information_schema's view of InnoDB tables: MariaDB and MySQL 8 name it differently

	next      time.Time   // when to look again
	seen      schemaState // the last state found different from the stored one: counted and logged once
	flushed   schemaState // memcached was flushed after this state was read
	flushedAt time.Time   // when that flush ended
	missing   string      // the missing triggers last reported
	failing   bool        // checks are failing: logged once per change
	// flushes for a change are failing: logged once per change
	flushFailing bool
}

func newDDLWatch(inv *Invalidator) *ddlWatch { return &ddlWatch{inv: inv} }

// due reports whether it is time to look again.
func (w *ddlWatch) due(now time.Time) bool { return !now.Before(w.next) }

// check looks at the schema once and takes the next step: flush memcached
// for a change found, or, a lease duration after the flush, record the
// state as invalidated. It returns an error only when the connection is
// lost; what the server refused (no invalidation_ddl table, no PROCESS
// privilege) is logged and retried, and the log is applied meanwhile.
func (w *ddlWatch) check(s *session) error {
	w.next = time.Now().Add(w.inv.cfg.DDLInterval)
	cur, stored, missing, err := w.read(s)
	if err != nil {
		return w.failed(err)
	}
	w.reportMissing(missing)
	if equalStates(cur, stored) {
		w.answered()
		w.seen, w.flushed = nil, nil
		return nil
	}
	if w.flushed != nil && equalStates(cur, w.flushed) {
		// Every lease taken before the flush has ended by flushedAt plus
		// the longest lease (package lease): from now on no proxy serves an
		// entry recorded before the flush.
		if wait := time.Until(w.flushedAt.Add(w.inv.cfg.LeaseDuration)); wait > 0 {
			w.next = time.Now().Add(wait)
			return nil
		}
		if err := s.writeSchema(cur); err != nil {
			return w.failed(err)
		}
		w.answered()
		w.flushed, w.seen = nil, nil
		w.inv.recordSchemaApplied()
		w.inv.log.Info("schema change invalidated: memcached flushed and every lease taken before the flush has ended",
			zap.Strings("tables", slices.Sorted(maps.Keys(cur))))
		return nil
	}
	if !equalStates(cur, w.seen) {
		w.seen = cur
		w.inv.m.ddlDetected.Inc()
		if len(stored) == 0 {
			w.inv.log.Info("no schema state recorded yet (first start with invalidation_ddl): flushing every memcached node once",
				zap.Strings("tables", slices.Sorted(maps.Keys(cur))))
		} else {
			w.inv.log.Warn("schema change the triggers cannot log: flushing every memcached node",
				zap.Strings("changes", describeChanges(stored, cur)))
		}
	}
	// The state was read before the flush: a change made after the read
	// is either flushed too or found at the next check.
	if err := w.inv.mover.FlushAll(); err != nil {
		w.inv.m.ddlFlushFailures.Inc()
		w.inv.setSchemaProblem("a schema change is not invalidated yet: " + err.Error())
		if !w.flushFailing {
			w.flushFailing = true
			w.inv.log.Warn("flushing memcached for a schema change failed; retrying every INVALIDATOR_DDL_INTERVAL", zap.Error(err))
		}
		return nil
	}
	if w.flushFailing {
		w.flushFailing = false
		w.inv.log.Info("memcached flushed for the schema change after failures")
	}
	w.answered()
	w.flushed, w.flushedAt = cur, time.Now()
	w.next = w.flushedAt.Add(w.inv.cfg.LeaseDuration)
	return nil
}

// failed handles a failed check: a lost connection ends the term; a
// refusal, or a schema the check cannot read, is logged (once per change)
// and retried at the next check.
func (w *ddlWatch) failed(err error) error {
	if !serverAnswered(err) && !errors.Is(err, errNoTableID) {
		return err
	}
	w.inv.m.ddlCheckFailures.Inc()
	w.inv.setSchemaProblem("schema check failing: " + err.Error())
	if !w.failing {
		w.failing = true
		w.inv.log.Error("schema check failing: TRUNCATE, DROP and RENAME are not invalidated until it works again", zap.Error(err))
	}
	return nil
}

func (w *ddlWatch) answered() {
	if w.failing {
		w.failing = false
		w.inv.log.Info("schema check answered again")
	}
	w.inv.setSchemaProblem(w.missingProblem())
}

func (w *ddlWatch) missingProblem() string {
	if w.missing == "" {
		return ""
	}
	return "invalidation_log triggers missing: " + w.missing
}

// reportMissing sets the gauge and logs when the set of missing triggers
// changes.
func (w *ddlWatch) reportMissing(missing []string) {
	w.inv.m.triggersMissing.Set(float64(len(missing)))
	now := strings.Join(missing, ", ")
	if now == w.missing {
		return
	}
	w.missing = now
	if now == "" {
		w.inv.log.Info("every watched table has its invalidation_log triggers again")
		return
	}
	w.inv.log.Error("invalidation_log triggers missing: changes to these tables are NOT invalidated; "+
		"restore the triggers (origin's migrations), or delete the table's row from invalidation_ddl if it is gone for good",
		zap.Strings("missing", missing))
}

// read returns the watched tables' current and stored states, and the
// triggers missing on them: every watched table that exists must log its
// INSERTs, UPDATEs and DELETEs.
func (w *ddlWatch) read(s *session) (cur, stored schemaState, missing []string, err error) {
	if w.view == "" {
		var mariadb bool
		if err := s.query(func(scan func(...any) error) error { return scan(&mariadb) },
			"SELECT VERSION() LIKE '%MariaDB%'"); err != nil {
			return nil, nil, nil, err
		}
		w.view = "INNODB_TABLES"
		if mariadb {
			w.view = "INNODB_SYS_TABLES"
		}
	}
	stored, err = s.readStoredSchema()
	if err != nil {
		return nil, nil, nil, err
	}
	trigs, err := s.readTriggers()
	if err != nil {
		return nil, nil, nil, err
	}
	watched := map[string]bool{logTable: true}
	for t := range stored {
		watched[t] = true
	}
	for _, tr := range trigs {
		if tr.logs {
			watched[tr.table] = true
		}
	}
	ids, err := s.readTableIDs(w.view, slices.Sorted(maps.Keys(watched)))
	if err != nil {
		return nil, nil, nil, err
	}
	cur = schemaState{}
	logged := map[string]bool{} // "table event" with an AFTER trigger that writes the log
	names := map[string][]string{}
	for _, tr := range trigs {
		names[tr.table] = append(names[tr.table], tr.name+"@"+tr.created)
		if tr.logs && tr.timing == "AFTER" {
			logged[tr.table+" "+tr.event] = true
		}
	}
	for t := range watched {
		slices.Sort(names[t])
		cur[t] = tableState{id: ids[t], triggers: strings.Join(names[t], ",")}
		if t == logTable || ids[t] == 0 {
			continue
		}
		for _, ev := range []string{"INSERT", "UPDATE", "DELETE"} {
			if !logged[t+" "+ev] {
				missing = append(missing, t+" AFTER "+ev)
			}
		}
	}
	slices.Sort(missing)
	return cur, stored, missing, nil
}

func equalStates(a, b schemaState) bool { return a != nil && b != nil && maps.Equal(a, b) }

// describeChanges names what differs between the stored and the current
// state, for the log.
func describeChanges(stored, cur schemaState) []string {
	var out []string
	for _, t := range slices.Sorted(maps.Keys(cur)) {
		was, ok := stored[t]
		switch now := cur[t]; {
		case !ok:
			out = append(out, fmt.Sprintf("%s: not recorded yet (table id %d)", t, now.id))
		case was.id != now.id:
			out = append(out, fmt.Sprintf("%s: table id %d -> %d (TRUNCATE, DROP, RENAME or CREATE)", t, was.id, now.id))
		case was.triggers != now.triggers:
			out = append(out, fmt.Sprintf("%s: triggers [%s] -> [%s]", t, was.triggers, now.triggers))
		}
	}
	return out
}

// trigger is one row of information_schema.TRIGGERS.
type trigger struct {
	table, name, event, timing, created string
	logs                                bool // its body writes invalidation_log
}

func (s *session) readTriggers() ([]trigger, error) {
	var out []trigger
	err := s.query(func(scan func(...any) error) error {
		var tr trigger
		err := scan(&tr.table, &tr.name, &tr.event, &tr.timing, &tr.created, &tr.logs)
		out = append(out, tr)
		return err
	}, "SELECT EVENT_OBJECT_TABLE, TRIGGER_NAME, EVENT_MANIPULATION, ACTION_TIMING, "+
		"COALESCE(DATE_FORMAT(CREATED, '%Y-%m-%d %H:%i:%s.%f'), ''), ACTION_STATEMENT LIKE '%"+logTable+"%' "+
		"FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()")
	return out, err
}

// readTableIDs returns InnoDB's id of each table that exists; view is the
// information_schema table that has them (reading it needs the PROCESS
// privilege).
func (s *session) readTableIDs(view string, tables []string) (map[string]uint64, error) {
	args := make([]any, len(tables))
	for i, t := range tables {
		args[i] = t
	}
	ids := map[string]uint64{}
	var noID []string
	err := s.query(func(scan func(...any) error) error {
		var name string
		var id *uint64
		if err := scan(&name, &id); err != nil {
			return err
		}
		if id == nil {
			noID = append(noID, name)
		} else {
			ids[name] = *id
		}
		return nil
	}, "SELECT t.TABLE_NAME, i.TABLE_ID FROM information_schema.TABLES AS t "+
		"LEFT JOIN information_schema."+view+" AS i ON i.NAME = CONCAT(t.TABLE_SCHEMA, '/', t.TABLE_NAME) "+
		"WHERE t.TABLE_SCHEMA = DATABASE() AND t.TABLE_TYPE = 'BASE TABLE' AND t.TABLE_NAME IN (?"+strings.Repeat(", ?", len(tables)-1)+")",
		args...)
	if err == nil && len(noID) > 0 {
		err = fmt.Errorf("%w: %v (not InnoDB?)", errNoTableID, noID)
	}
	return ids, err
}

// errNoTableID: a watched table has no InnoDB table id to compare.
var errNoTableID = errors.New("no InnoDB table id, so a TRUNCATE cannot be detected")

func (s *session) readStoredSchema() (schemaState, error) {
	st := schemaState{}
	err := s.query(func(scan func(...any) error) error {
		var name string
		var ts tableState
		err := scan(&name, &ts.id, &ts.triggers)
		st[name] = ts
		return err
	}, "SELECT table_name, table_id, triggers FROM invalidation_ddl")
	return st, err
}

// writeSchema records st as invalidated.
func (s *session) writeSchema(st schemaState) error {
	var args []any
	for _, t := range slices.Sorted(maps.Keys(st)) {
		args = append(args, t, st[t].id, st[t].triggers)
	}
	return s.exec("INSERT INTO invalidation_ddl (table_name, table_id, triggers) VALUES (?, ?, ?)"+
		strings.Repeat(", (?, ?, ?)", len(st)-1)+
		" ON DUPLICATE KEY UPDATE table_id = VALUES(table_id), triggers = VALUES(triggers)", args...)
}

// query runs a query on the session and calls row for each row.
func (s *session) query(row func(scan func(...any) error) error, query string, args ...any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	rows, err := s.conn.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}
