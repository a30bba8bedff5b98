package service

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// parsePlist decodes an XML property list into Go values: map[string]any,
// []any, string, int64 and bool.
func parsePlist(text string) (any, error) {
	d := xml.NewDecoder(strings.NewReader(text))
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("no <plist>: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local != "plist" {
				return nil, fmt.Errorf("root element <%s>, want <plist>", se.Name.Local)
			}
			break
		}
	}
	v, err := plistValue(d)
	if err != nil {
		return nil, err
	}
	// Nothing but </plist> and blanks may follow.
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return v, nil
		}
		if err != nil {
			return nil, err
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			return nil, fmt.Errorf("second value <%s> in <plist>", tok.Name.Local)
		case xml.CharData:
			if strings.TrimSpace(string(tok)) != "" {
				return nil, fmt.Errorf("text %q after the value", tok)
			}
		}
	}
}

// plistValue reads the next value element from d. It returns errEnd at the
// end of the enclosing element.
func plistValue(d *xml.Decoder) (any, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, err
		}
		switch tok := tok.(type) {
		case xml.EndElement:
			return nil, errEnd
		case xml.CharData:
			if strings.TrimSpace(string(tok)) != "" {
				return nil, fmt.Errorf("stray text %q", tok)
			}
		case xml.StartElement:
			switch tok.Name.Local {
			case "string":
				var s string
				err := d.DecodeElement(&s, &tok)
				return s, err
			case "integer":
				var s string
				if err := d.DecodeElement(&s, &tok); err != nil {
					return nil, err
				}
				return strconv.ParseInt(s, 10, 64)
			case "true", "false":
				if err := d.Skip(); err != nil {
					return nil, err
				}
				return tok.Name.Local == "true", nil
			case "array":
				var a []any
				for {
					v, err := plistValue(d)
					if errors.Is(err, errEnd) {
						return a, nil
					}
					if err != nil {
						return nil, err
					}
					a = append(a, v)
				}
			case "dict":
				m := map[string]any{}
				for {
					k, err := plistValue(d)
					if errors.Is(err, errEnd) {
						return m, nil
					}
					if err != nil {
						return nil, err
					}
					key, ok := k.(plistKey)
					if !ok {
						return nil, fmt.Errorf("dict entry %v is not a <key>", k)
					}
					if _, dup := m[string(key)]; dup {
						return nil, fmt.Errorf("key %q twice", key)
					}
					v, err := plistValue(d)
					if err != nil {
						return nil, fmt.Errorf("value of %q: %w", key, err)
					}
					m[string(key)] = v
				}
			case "key":
				var s string
				err := d.DecodeElement(&s, &tok)
				return plistKey(s), err
			default:
				return nil, fmt.Errorf("unknown element <%s>", tok.Name.Local)
			}
		}
	}
}

type plistKey string

var errEnd = errors.New("end of element")

// TestLaunchdPlist parses each plist and checks the keys launchd acts on.
func TestLaunchdPlist(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			text, err := Launchd(tc.spec)
			if err != nil {
				t.Fatalf("Launchd: %v", err)
			}
			v, err := parsePlist(text)
			if err != nil {
				t.Fatalf("parse: %v\n%s", err, text)
			}
			top, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("top value is %T, want a dict", v)
			}
			p, err := resolve(tc.spec)
			if err != nil {
				t.Fatal(err)
			}

			if got, want := top["Label"], "dev.patchd."+p.name; got != want {
				t.Errorf("Label = %v, want %q", got, want)
			}
			var args []string
			raw, _ := top["ProgramArguments"].([]any)
			for _, a := range raw {
				s, _ := a.(string)
				args = append(args, s)
			}
			if want := append([]string{tc.spec.Exe, "run"}, tc.spec.Args...); !slices.Equal(args, want) {
				t.Errorf("ProgramArguments = %q, want %q", args, want)
			}
			if got := top["WorkingDirectory"]; got != tc.spec.Workspace {
				t.Errorf("WorkingDirectory = %v, want %q", got, tc.spec.Workspace)
			}
			if got := top["RunAtLoad"]; got != true {
				t.Errorf("RunAtLoad = %v, want true", got)
			}
			keepAlive, _ := top["KeepAlive"].(map[string]any)
			if got, ok := keepAlive["SuccessfulExit"]; !ok || got != false {
				t.Errorf("KeepAlive = %v, want {SuccessfulExit: false}", top["KeepAlive"])
			}
			if got, _ := top["ExitTimeOut"].(int64); got < seconds(p.drain)+5 {
				t.Errorf("ExitTimeOut = %v, want at least the drain (%s) + 5s", top["ExitTimeOut"], p.drain)
			}
			if got := top["ThrottleInterval"]; got != int64(5) {
				t.Errorf("ThrottleInterval = %v, want 5", got)
			}
			for key, file := range map[string]string{"StandardOutPath": "launchd.out.log", "StandardErrorPath": "launchd.err.log"} {
				if got, want := top[key], filepath.Join(p.stateDir, "logs", file); got != want {
					t.Errorf("%s = %v, want %q", key, got, want)
				}
			}
			env, _ := top["EnvironmentVariables"].(map[string]any)
			if len(env) != len(specEnv(tc.spec)) {
				t.Errorf("EnvironmentVariables = %v, want %q", env, specEnv(tc.spec))
			}
			for k, want := range specEnv(tc.spec) {
				if got := env[k]; got != want {
					t.Errorf("EnvironmentVariables[%s] = %v, want %q", k, got, want)
				}
			}
			if got, has := top["UserName"]; (tc.spec.User != "") != has || (has && got != tc.spec.User) {
				t.Errorf("UserName = %v (present %v), want %q", got, has, tc.spec.User)
			}

			if plutil, err := exec.LookPath("plutil"); err == nil {
				path := filepath.Join(t.TempDir(), "patchd.plist")
				if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				if out, err := exec.Command(plutil, "-lint", path).CombinedOutput(); err != nil {
					t.Errorf("plutil -lint: %v\n%s", err, out)
				}
			}
		})
	}
}

// TestLaunchdComment checks that user data cannot end the XML comment early.
func TestLaunchdComment(t *testing.T) {
	spec := Spec{Exe: "/opt/patchd/bin/patchd", Workspace: "/srv/a--b", User: "svc--x"}
	text, err := Launchd(spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parsePlist(text); err != nil {
		t.Fatalf("parse: %v\n%s", err, text)
	}
	start, end := strings.Index(text, "<!--"), strings.Index(text, "-->")
	if strings.Contains(text[start+4:end], "--") {
		t.Errorf("comment holds \"--\":\n%s", text[start:end+3])
	}
}
