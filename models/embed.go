// Package models embeds the sample models shipped with mtlrun (see README.md).
package models

import "embed"

// FS holds the sample models (seed_lstm, mlp4) and the demo's data
// (seattle_weather).
//
//go:embed seattle_weather seed_lstm mlp4
var FS embed.FS
