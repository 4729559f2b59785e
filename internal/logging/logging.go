// Package logging sets up trakx's logrus logger.
package logging

import (
	"fmt"
	"io"
	"os"

	"github.com/sirupsen/logrus"
)

// New returns a logger writing to w at level ("debug", "info", "warn",
// "error").
func New(w io.Writer, level string) (*logrus.Logger, error) {
	log := logrus.New()
	log.SetOutput(w)
	log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true, TimestampFormat: "2006-01-02 15:04:05.000"})
	if err := SetLevel(log, level); err != nil {
		return nil, err
	}
	return log, nil
}

// NewDefault is New on standard error.
func NewDefault(level string) (*logrus.Logger, error) { return New(os.Stderr, level) }

// SetLevel changes the level of a running logger.
func SetLevel(log *logrus.Logger, level string) error {
	l, err := logrus.ParseLevel(level)
	if err != nil {
		return fmt.Errorf("log.level: %w", err)
	}
	log.SetLevel(l)
	return nil
}
