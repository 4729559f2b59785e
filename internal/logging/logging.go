// Package logging sets up trakx's logrus logger: readable text with the time
// on a terminal, and under journald each line prefixed with its syslog
// priority and without a timestamp, so that `journalctl -p` filters right.
package logging

import (
	"bytes"
	"fmt"
	"io"
	"sort"

	"github.com/sirupsen/logrus"
)

// New returns a logger writing to w at level ("debug", "info", "warn",
// "error"), in the journal's form when journaled is set.
func New(w io.Writer, level string, journaled bool) (*logrus.Logger, error) {
	log := logrus.New()
	log.SetOutput(w)
	if journaled {
		log.SetFormatter(JournalFormatter{})
	} else {
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: "2006-01-02 15:04:05.000"})
	}
	if err := SetLevel(log, level); err != nil {
		return nil, err
	}
	return log, nil
}

// SetLevel changes the level of a running logger.
func SetLevel(log *logrus.Logger, level string) error {
	l, err := logrus.ParseLevel(level)
	if err != nil {
		return fmt.Errorf("log.level: %w", err)
	}
	log.SetLevel(l)
	return nil
}

// JournalFormatter writes "<priority>message key=value ..." lines, the form
// systemd reads priorities from (sd-daemon(3)). journald adds the time.
type JournalFormatter struct{}

// priority maps logrus levels to syslog priorities.
func priority(l logrus.Level) int {
	switch l {
	case logrus.PanicLevel, logrus.FatalLevel:
		return 2 // crit
	case logrus.ErrorLevel:
		return 3 // err
	case logrus.WarnLevel:
		return 4 // warning
	case logrus.InfoLevel:
		return 6 // info
	}
	return 7 // debug
}

// Format implements logrus.Formatter.
func (JournalFormatter) Format(e *logrus.Entry) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "<%d>%s", priority(e.Level), e.Message)
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%q", k, fmt.Sprint(e.Data[k]))
	}
	// One record per line: a newline inside a message would otherwise
	// start a record at the default priority.
	out := bytes.ReplaceAll(b.Bytes(), []byte("\n"), []byte(" "))
	return append(out, '\n'), nil
}
