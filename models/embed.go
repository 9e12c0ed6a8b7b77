// Package models embeds the sample models shipped with mtlrun (see README.md).
package models

import "embed"

// FS holds the sample models and the demo's data.
//
//go:embed seattle_weather
var FS embed.FS
