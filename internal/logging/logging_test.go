package logging

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestJournalFormat(t *testing.T) {
	var out bytes.Buffer
	log, err := New(&out, "debug", true)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("per request")
	log.Info("ready")
	log.Warn("careful")
	log.WithError(errors.New("disk full")).Error("save failed\nsecond line")
	want := "<7>per request\n<6>ready\n<4>careful\n<3>save failed second line error=\"disk full\"\n"
	if out.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestTerminalFormatHasTime(t *testing.T) {
	var out bytes.Buffer
	log, _ := New(&out, "info", false)
	log.Debug("hidden")
	log.Info("shown")
	if s := out.String(); !strings.Contains(s, "time=\"20") || !strings.Contains(s, "msg=shown") || strings.Contains(s, "hidden") {
		t.Fatalf("%q", s)
	}
}

func TestBadLevel(t *testing.T) {
	if _, err := New(&bytes.Buffer{}, "loud", false); err == nil || !strings.Contains(err.Error(), "log.level") {
		t.Fatalf("%v", err)
	}
}
