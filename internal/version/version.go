// Package version holds mtlrun's release number, shown by the CLI and
// written as producer_version into exported models.
package version

// Version is the mtlrun release.
const Version = "0.1.0"

// Producer is the producer_name written into exported models.
const Producer = "mtlrun"
