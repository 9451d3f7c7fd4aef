package config

import (
	"bytes"
	_ "embed" // for the embedded default.yaml
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

//go:embed default.yaml
var defaultYAML string

// Load reads and validates the config file at path. Errors name the file,
// line and key; several problems are joined with errors.Join.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	// A deployed config keeps its queue and correlations on disk by default, next to the
	// config file; store_path: memory opts out.
	if !c.storeSet {
		c.Relay.StorePath = filepath.Join(filepath.Dir(path), DefaultStoreFile)
	}
	return c, nil
}

// DefaultStoreFile is the durable store's file name, next to the config file, when
// relay.store_path is not set; StoreMemory as relay.store_path keeps everything in memory.
const (
	DefaultStoreFile = "smppguard.db"
	StoreMemory      = "memory"
)

// Parse decodes YAML bytes strictly, applies defaults and validates the
// result. name (a file path, or e.g. "embedded") prefixes every error
// message. All problems found are returned, joined with errors.Join; each
// is an *Error.
func Parse(name string, data []byte) (*Config, error) {
	root, err := parseTree(name, data)
	if err != nil {
		return nil, err
	}
	if errs := checkTree(name, root); len(errs) > 0 {
		return nil, joinSorted(errs)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		// checkTree should have caught everything; keep yaml's word as final.
		return nil, wrapYAMLError(name, err)
	}
	d := &doc{root: root}
	c.storeSet = d.has("relay.store_path")
	if c.Relay.StorePath == StoreMemory {
		c.Relay.StorePath = ""
	}
	if errs := expandSecrets(&c, name, d, os.LookupEnv); len(errs) > 0 {
		return nil, joinSorted(errs)
	}
	applyDefaults(&c, d)
	if errs := validate(&c, name, d); len(errs) > 0 {
		return nil, joinSorted(errs)
	}
	return &c, nil
}

// Default returns a freshly parsed copy of the embedded sandbox config. It
// panics if the embedded file is invalid, which the package tests rule out.
func Default() *Config {
	c, err := Parse("embedded default.yaml", []byte(defaultYAML))
	if err != nil {
		panic(fmt.Sprintf("config: embedded default.yaml is invalid: %v", err))
	}
	return c
}

// DefaultYAML returns the text of the embedded default config.
func DefaultYAML() []byte { return []byte(defaultYAML) }

// Error is one configuration problem, located by file, line and key path.
// Its message reads "file:line: path: problem; how to fix".
type Error struct {
	File string // name given to Parse, or the path given to Load
	Line int    // 1-based line; 0 when unknown
	Path string // key path such as "accounts[1].route"; empty when not tied to a key
	Msg  string // the problem, usually followed by "; " and how to fix it
	Err  error  // underlying error (e.g. from yaml), if any
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying error, if any.
func (e *Error) Unwrap() error { return e.Err }

// joinSorted orders errors by line and joins them.
func joinSorted(errs []error) error {
	line := func(err error) int {
		var e *Error
		if errors.As(err, &e) {
			return e.Line
		}
		return 0
	}
	sort.SliceStable(errs, func(i, j int) bool { return line(errs[i]) < line(errs[j]) })
	return errors.Join(errs...)
}

// wrapYAMLError turns a yaml.v3 error into *Error values starting with the
// file name ("file:line: ..." when yaml reported a line).
func wrapYAMLError(name string, err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		errs := make([]error, 0, len(te.Errors))
		for _, msg := range te.Errors {
			errs = append(errs, yamlLineError(name, msg, err))
		}
		return joinSorted(errs)
	}
	return yamlLineError(name, strings.TrimPrefix(err.Error(), "yaml: "), err)
}

// yamlLineError moves a leading "line N: " of a yaml message into Line.
func yamlLineError(name, msg string, cause error) *Error {
	e := &Error{File: name, Msg: msg, Err: cause}
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, text, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				e.Line, e.Msg = n, text
			}
		}
	}
	return e
}

// parseTree decodes data into a node tree and returns the top-level mapping.
func parseTree(name string, data []byte) (*yaml.Node, error) {
	const hint = "; start from the output of `smppguard serve --print-config`"
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var top yaml.Node
	if err := dec.Decode(&top); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: name, Msg: "empty config" + hint}
		}
		return nil, wrapYAMLError(name, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, &Error{File: name, Line: extra.Line,
			Msg: "more than one YAML document; keep the whole configuration in one document (remove the \"---\" separator)"}
	case !errors.Is(err, io.EOF):
		return nil, wrapYAMLError(name, err)
	}
	root := &top
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, &Error{File: name, Msg: "empty config" + hint}
		}
		root = root.Content[0]
	}
	root = resolve(root)
	if isNull(root) {
		return nil, &Error{File: name, Line: root.Line, Msg: "empty config" + hint}
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{File: name, Line: root.Line,
			Msg: fmt.Sprintf("the top level must be a mapping of sections (listen:, upstreams:, accounts:, ...), got %s", describe(root))}
	}
	return root, nil
}

// resolve follows alias nodes.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is absent or an explicit YAML null ("~", "null"
// or an empty value).
func isNull(n *yaml.Node) bool {
	n = resolve(n)
	return n == nil || n.Kind == 0 || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// isMerge reports whether key is a YAML merge key ("<<").
func isMerge(key *yaml.Node) bool {
	return key.Kind == yaml.ScalarNode && key.Value == "<<" && key.ShortTag() == "!!merge"
}

// describe names what a node holds, for "got ..." in messages.
func describe(n *yaml.Node) string {
	n = resolve(n)
	switch {
	case n == nil || isNull(n):
		return "nothing"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	default:
		return strconv.Quote(n.Value)
	}
}

// treeChecker walks the node tree against the Config type, reporting unknown
// and duplicate keys and values of the wrong type with their key paths.
type treeChecker struct {
	file string
	errs []error
}

func checkTree(file string, root *yaml.Node) []error {
	tc := &treeChecker{file: file}
	tc.check(root, reflect.TypeFor[Config](), "", 0)
	return tc.errs
}

func (tc *treeChecker) add(line int, path, format string, args ...any) {
	tc.errs = append(tc.errs, &Error{File: tc.file, Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (tc *treeChecker) check(n *yaml.Node, t reflect.Type, path string, depth int) {
	n = resolve(n)
	if isNull(n) || depth > 50 {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeFor[Duration]():
		if _, problem := parseDurationNode(n); problem != "" {
			tc.add(n.Line, path, "%s", problem)
		}
	case t.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			tc.add(n.Line, path, "expected a mapping with keys %s, got %s", strings.Join(yamlKeys(t), ", "), describe(n))
			return
		}
		tc.checkMapping(n, t, path, map[string]int{}, depth)
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			tc.add(n.Line, path, "expected a list, got %s; write one entry per line starting with \"- \", or [a, b]", describe(n))
			return
		}
		for i, item := range n.Content {
			ip := fmt.Sprintf("%s[%d]", path, i)
			if isNull(item) {
				// yaml.v3 would silently drop it, shifting later indexes.
				tc.add(item.Line, ip, "empty list entry; fill it in or remove the lone \"-\"")
				continue
			}
			tc.check(item, t.Elem(), ip, depth+1)
		}
	default:
		err := n.Decode(reflect.New(t).Interface())
		if err == nil && isInteger(t) && n.ShortTag() != "!!int" {
			// yaml.v3 silently truncates 1.5 to 1; refuse that.
			err = errors.New("not an integer")
		}
		if err != nil {
			hint := ""
			if n.Kind == yaml.ScalarNode && n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 && t.Kind() != reflect.String {
				hint = "; remove the quotes"
			}
			tc.add(n.Line, path, "expected %s, got %s%s", typeName(t), describe(n), hint)
		}
	}
}

// checkMapping checks the keys of mapping n against struct type t. seen maps
// keys already present to their line, for duplicate detection.
func (tc *treeChecker) checkMapping(n *yaml.Node, t reflect.Type, path string, seen map[string]int, depth int) {
	fields := yamlFields(t)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if isMerge(k) {
			m := resolve(v)
			merged := []*yaml.Node{m}
			if m != nil && m.Kind == yaml.SequenceNode {
				merged = m.Content
			}
			for _, mm := range merged {
				if mm = resolve(mm); mm != nil && mm.Kind == yaml.MappingNode && depth < 50 {
					// Explicit keys override merged ones, so merged keys
					// get their own duplicate scope.
					tc.checkMapping(mm, t, path, map[string]int{}, depth+1)
				}
			}
			continue
		}
		if k.Kind != yaml.ScalarNode {
			tc.add(k.Line, path, "keys must be plain names, got %s", describe(k))
			continue
		}
		where := "at the top level"
		if path != "" {
			where = "in " + path
		}
		if first, dup := seen[k.Value]; dup {
			tc.add(k.Line, "", "duplicate key %q %s (first at line %d); keep only one", k.Value, where, first)
			continue
		}
		seen[k.Value] = k.Line
		ft, ok := fields[k.Value]
		if !ok {
			tc.add(k.Line, "", "unknown key %q %s; %s", k.Value, where, suggest(k.Value, yamlKeys(t)))
			continue
		}
		tc.check(v, ft, joinPath(path, k.Value), depth+1)
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// yamlFields maps the yaml key of each exported field of struct t to its type.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		if f := t.Field(i); f.IsExported() {
			if k := yamlKey(f); k != "" {
				m[k] = f.Type
			}
		}
	}
	return m
}

// yamlKeys lists the yaml keys of struct t in declaration order.
func yamlKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		if f := t.Field(i); f.IsExported() {
			if k := yamlKey(f); k != "" {
				keys = append(keys, k)
			}
		}
	}
	return keys
}

func yamlKey(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	switch name {
	case "-":
		return ""
	case "":
		return strings.ToLower(f.Name)
	}
	return name
}

func isInteger(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

func typeName(t reflect.Type) string {
	if isInteger(t) {
		return "a whole number"
	}
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	}
	return t.String()
}

// suggest proposes the closest valid key, or lists them all.
func suggest(key string, valid []string) string {
	best, bestDist := "", -1
	lk := strings.ToLower(key)
	for _, v := range valid {
		if d := editDistance(lk, v); bestDist < 0 || d < bestDist {
			best, bestDist = v, d
		}
	}
	if bestDist >= 0 && bestDist <= max(1, len(key)/3) {
		return fmt.Sprintf("did you mean %q?", best)
	}
	return "valid keys: " + strings.Join(valid, ", ")
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// doc locates key paths such as "accounts[1].prefix_routes[0].route" in the
// decoded node tree, for line numbers and presence checks.
type doc struct {
	root *yaml.Node // top-level mapping; nil when the Config was built in code
}

// lookup returns the node at path and the line of its key (or list item).
// When the path is absent it returns ok=false and the line of the deepest
// existing parent.
func (d *doc) lookup(path string) (n *yaml.Node, line int, ok bool) {
	if d == nil || d.root == nil {
		return nil, 0, false
	}
	cur := d.root
	line = cur.Line
	for path != "" {
		var key string
		idx := -1
		switch {
		case path[0] == '[':
			end := strings.IndexByte(path, ']')
			if end < 0 {
				return nil, line, false
			}
			i, err := strconv.Atoi(path[1:end])
			if err != nil {
				return nil, line, false
			}
			idx, path = i, path[end+1:]
		case path[0] == '.':
			path = path[1:]
			continue
		default:
			end := strings.IndexAny(path, ".[")
			if end < 0 {
				end = len(path)
			}
			key, path = path[:end], path[end:]
		}
		cur = resolve(cur)
		if idx >= 0 {
			if cur == nil || cur.Kind != yaml.SequenceNode || idx >= len(cur.Content) {
				return nil, line, false
			}
			cur = cur.Content[idx]
			line = cur.Line
			continue
		}
		k, v := mapLookup(cur, key, 0)
		if k == nil {
			return nil, line, false
		}
		cur, line = v, k.Line
	}
	return cur, line, true
}

// mapLookup finds key in mapping m, falling back to merged ("<<") mappings.
func mapLookup(m *yaml.Node, key string, depth int) (k, v *yaml.Node) {
	m = resolve(m)
	if m == nil || m.Kind != yaml.MappingNode || depth > 50 {
		return nil, nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if kn := resolve(m.Content[i]); kn.Kind == yaml.ScalarNode && kn.Value == key && !isMerge(kn) {
			return kn, m.Content[i+1]
		}
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if !isMerge(resolve(m.Content[i])) {
			continue
		}
		mv := resolve(m.Content[i+1])
		merged := []*yaml.Node{mv}
		if mv != nil && mv.Kind == yaml.SequenceNode {
			merged = mv.Content
		}
		for _, mm := range merged {
			if k, v := mapLookup(mm, key, depth+1); k != nil {
				return k, v
			}
		}
	}
	return nil, nil
}

// line returns the line of path, or of its deepest existing parent.
func (d *doc) line(path string) int {
	_, line, _ := d.lookup(path)
	return line
}

// has reports whether path is present with a non-null value.
func (d *doc) has(path string) bool {
	n, _, ok := d.lookup(path)
	return ok && !isNull(n)
}
