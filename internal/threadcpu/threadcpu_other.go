//go:build !linux

package threadcpu

import "time"

func now() time.Duration { return time.Since(start) }
