package serve

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/mtlrun/mtlrun/importer"
)

// A model repository is a directory in Triton's layout:
//
//	DIR/NAME/VERSION/model.onnx
//
// where VERSION is a positive integer. Every version found is served;
// requests without a version get the highest. POST
// /v2/repository/models/NAME/load (re)loads NAME from disk and
// /v2/repository/models/NAME/unload stops serving it. A reload builds the
// new versions first and swaps them in at once: requests already running
// finish on the versions they started with, and no request is refused in
// between.

// ErrNoRepository: load and unload need --model-repository.
var ErrNoRepository = errors.New("the server has no model repository (--model-repository): models cannot be loaded or unloaded")

// LoadRepository serves every model of a repository directory and enables
// the load and unload endpoints.
func (s *Server) LoadRepository(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("serve: model repository: %w", err)
	}
	s.repo = dir
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if err := s.LoadFromRepository(e.Name()); err != nil {
			return err
		}
	}
	return nil
}

// repositoryVersions lists the versions of NAME on disk, sorted.
func (s *Server) repositoryVersions(name string) ([]string, error) {
	if name == "" || name == "." || name == ".." || filepath.Base(name) != name {
		return nil, badf("invalid model name %q", name)
	}
	entries, err := os.ReadDir(filepath.Join(s.repo, name))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w %q: not in the repository %s", ErrUnknownModel, name, s.repo)
		}
		return nil, err
	}
	var versions []string
	for _, e := range entries {
		if v, err := strconv.ParseInt(e.Name(), 10, 64); err != nil || v < 1 || !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(s.repo, name, e.Name(), "model.onnx")); err == nil {
			versions = append(versions, e.Name())
		}
	}
	sort.Slice(versions, func(i, j int) bool { return versionLess(versions[i], versions[j]) })
	if len(versions) == 0 {
		return nil, badf("model %q in %s has no VERSION/model.onnx", name, s.repo)
	}
	return versions, nil
}

// LoadFromRepository (re)loads every version of one model from the
// repository, then swaps them in at once.
func (s *Server) LoadFromRepository(name string) error {
	if s.repo == "" {
		return ErrNoRepository
	}
	s.repoMu.Lock()
	defer s.repoMu.Unlock()
	versions, err := s.repositoryVersions(name)
	if err != nil {
		return err
	}
	var ms []*Model
	for _, v := range versions {
		path := filepath.Join(s.repo, name, v, "model.onnx")
		rm, err := importer.Load(path)
		if err == nil {
			var m *Model
			if m, err = s.newModel(name, v, path, rm); err == nil {
				ms = append(ms, m)
				continue
			}
		}
		s.retire(newModelSet(ms...)) // the versions built so far
		return badf("loading %s: %v", path, err)
	}
	old := s.install(name, newModelSet(ms...))
	s.seq.endSet(old, "reloaded (POST /v2/repository/models/"+name+"/load)")
	s.retire(old)
	return nil
}

// Unload stops serving a model; requests running on it finish first.
func (s *Server) Unload(name string) error {
	if s.repo == "" {
		return ErrNoRepository
	}
	s.repoMu.Lock()
	defer s.repoMu.Unlock()
	old := s.install(name, nil)
	if old == nil {
		return fmt.Errorf("%w %q", ErrUnknownModel, name)
	}
	s.seq.endSet(old, "unloaded (POST /v2/repository/models/"+name+"/unload)")
	s.retire(old)
	s.opts.Logger.Info("model unloaded", "model", name)
	return nil
}

// repositoryEntry is one row of Triton's repository index.
type repositoryEntry struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	State   string `json:"state,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

func (s *Server) handleRepositoryIndex(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, http.StatusOK, s.repositoryIndex())
}

// repositoryIndex lists the served model versions, READY, and the models
// of the repository that are not loaded, UNAVAILABLE.
func (s *Server) repositoryIndex() []repositoryEntry {
	var out []repositoryEntry
	seen := map[string]bool{}
	s.mu.RLock()
	for name, set := range s.models {
		seen[name] = true
		for v := range set.versions {
			out = append(out, repositoryEntry{Name: name, Version: v, State: "READY"})
		}
	}
	s.mu.RUnlock()
	if s.repo != "" {
		entries, _ := os.ReadDir(s.repo)
		for _, e := range entries {
			if e.IsDir() && !seen[e.Name()] {
				out = append(out, repositoryEntry{Name: e.Name(), State: "UNAVAILABLE", Reason: "unloaded"})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return versionLess(out[i].Version, out[j].Version)
	})
	if out == nil {
		out = []repositoryEntry{}
	}
	return out
}

func (s *Server) repositoryError(w http.ResponseWriter, r *http.Request, err error) {
	code, _ := httpStatus(err)
	if errors.Is(err, ErrNoRepository) {
		code = http.StatusBadRequest
	}
	writeError(w, r, code, err.Error())
}

func (s *Server) handleRepositoryLoad(w http.ResponseWriter, r *http.Request) {
	if err := s.LoadFromRepository(r.PathValue("name")); err != nil {
		s.repositoryError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, map[string]any{})
}

func (s *Server) handleRepositoryUnload(w http.ResponseWriter, r *http.Request) {
	if err := s.Unload(r.PathValue("name")); err != nil {
		s.repositoryError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, map[string]any{})
}
