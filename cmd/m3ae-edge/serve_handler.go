package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/m3ae-edge/m3ae-edge/defaultmodel"
)

// URL paths of the model. The page reads modelInfoPath, which names the
// model's own URL: modelPathPrefix, the first modelHashChars hex digits
// of the file's SHA-256, a slash and the file name. The URL changes with
// the content, so the response can be cached for good. model.json gives
// it relative to the page, so the page also works under a path prefix
// behind a reverse proxy.
const (
	modelInfoPath   = "/model.json"
	modelPathPrefix = "/model/"
	modelHashChars  = 16
)

// contentTypes maps file name extensions to the Content-Type header of the
// page's files. A fixed table, not the system's MIME database, so every
// machine sends the same types; other extensions get
// application/octet-stream.
var contentTypes = map[string]string{
	".html":    "text/html; charset=utf-8",
	".js":      "text/javascript; charset=utf-8",
	".css":     "text/css; charset=utf-8",
	".json":    "application/json",
	".wasm":    "application/wasm",
	".png":     "image/png",
	".jpg":     "image/jpeg",
	".jpeg":    "image/jpeg",
	".svg":     "image/svg+xml",
	".ico":     "image/x-icon",
	".jsonl":   "text/plain; charset=utf-8",
	".md":      "text/plain; charset=utf-8",
	".txt":     "text/plain; charset=utf-8",
	".LICENSE": "text/plain; charset=utf-8",
}

// contentSecurityPolicy allows only this origin's scripts, styles, images
// and connections, plus WebAssembly compilation ('wasm-unsafe-eval') and
// the page's own blob: and data: images.
const contentSecurityPolicy = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; " +
	"img-src 'self' blob: data:; style-src 'self'; connect-src 'self'; worker-src 'self'; " +
	"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'"

// Cache-Control values. Browsers revalidate the page's files on every
// request, and a matching ETag gets 304 Not Modified with no body. The
// model's URL names its content, so browsers may keep it for a year
// without asking.
const (
	revalidateCacheControl = "no-cache"
	immutableCacheControl  = "public, max-age=31536000, immutable"
)

// servedModel is the model file that the demo serves, with its URL.
type servedModel struct {
	data   []byte
	name   string // file name, the last element of the URL
	sha256 string // hex digest of data
	path   string // URL path, unescaped as in url.URL.Path
	url    string // URL relative to the page, escaped
}

func newServedModel(data []byte, name string) *servedModel {
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	folder := modelPathPrefix + digest[:modelHashChars] + "/"
	return &servedModel{
		data:   data,
		name:   name,
		sha256: digest,
		path:   folder + name,
		url:    strings.TrimPrefix(folder, "/") + url.PathEscape(name),
	}
}

// modelName returns the file name that the model of a --model value is
// served under.
func modelName(path string) string {
	if path == "" {
		return defaultmodel.FileName
	}
	return filepath.Base(path)
}

// modelInfo is the JSON body of modelInfoPath.
type modelInfo struct {
	Name   string `json:"name"`
	URL    string `json:"url"`
	Bytes  int    `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// demoHandler serves the page's files from site, the model and its
// description.
type demoHandler struct {
	site      fs.FS
	model     *servedModel
	modelInfo []byte

	etagsMu sync.Mutex
	etags   map[etagKey]string
}

// etagKey identifies one version of a file: a --www folder's files may
// change while the server runs, and the embedded ones have a zero time.
type etagKey struct {
	name    string
	size    int64
	modTime time.Time
}

func newDemoHandler(site fs.FS, model *servedModel, logger *slog.Logger) http.Handler {
	info, err := json.Marshal(modelInfo{Name: model.name, URL: model.url, Bytes: len(model.data), SHA256: model.sha256})
	if err != nil {
		panic(err) // modelInfo has only strings and an int
	}
	h := &demoHandler{site: site, model: model, modelInfo: info, etags: map[etagKey]string{}}
	return logRequests(h, logger)
}

func (h *demoHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	header := w.Header()
	header.Set("X-Content-Type-Options", "nosniff")
	header.Set("Referrer-Policy", "no-referrer")
	header.Set("Content-Security-Policy", contentSecurityPolicy)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		header.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed: use GET or HEAD", http.StatusMethodNotAllowed)
		return
	}

	switch p := r.URL.Path; {
	case p == modelInfoPath:
		header.Set("Content-Type", "application/json")
		header.Set("Cache-Control", revalidateCacheControl)
		header.Set("ETag", etagOf(h.modelInfo))
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(h.modelInfo))
	case strings.HasPrefix(p, modelPathPrefix):
		h.serveModel(w, r)
	default:
		h.serveFile(w, r)
	}
}

// serveModel serves the model at its URL. Another URL under
// modelPathPrefix, such as that of a model served before a restart with
// another --model, is not found.
func (h *demoHandler) serveModel(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != h.model.path {
		http.Error(w, "model not found: this server serves /"+h.model.url+", so reload the page", http.StatusNotFound)
		return
	}
	header := w.Header()
	header.Set("Content-Type", "application/octet-stream")
	header.Set("Cache-Control", immutableCacheControl)
	header.Set("ETag", `"`+h.model.sha256+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(h.model.data))
}

// serveFile serves one of the page's files. "/" is index.html; folders and
// names that start with a dot are not found.
func (h *demoHandler) serveFile(w http.ResponseWriter, r *http.Request) {
	name, ok := siteFileName(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	data, info, err := h.readFile(name)
	switch {
	case isNotFound(err) || (err == nil && info.IsDir()):
		http.NotFound(w, r)
		return
	case err != nil:
		recordError(w, fmt.Errorf("read page file %s: %w", name, err))
		http.Error(w, "internal server error: the page file could not be read", http.StatusInternalServerError)
		return
	}
	header := w.Header()
	contentType, ok := contentTypes[path.Ext(name)]
	if !ok {
		contentType = "application/octet-stream"
	}
	header.Set("Content-Type", contentType)
	header.Set("Cache-Control", revalidateCacheControl)
	header.Set("ETag", h.etag(name, info, data))
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

// siteFileName maps a URL path to a file name in the site. It rejects
// paths that do not start with a slash or that name a dot file or
// folder. path.Clean resolves ".." against the root, so no name leaves
// the site, and fs.FS rejects what is left.
func siteFileName(urlPath string) (string, bool) {
	if !strings.HasPrefix(urlPath, "/") {
		return "", false
	}
	name := strings.TrimPrefix(path.Clean(urlPath), "/")
	if name == "" {
		return "index.html", true
	}
	if !fs.ValidPath(name) {
		return "", false
	}
	for _, element := range strings.Split(name, "/") {
		if strings.HasPrefix(element, ".") {
			return "", false
		}
	}
	return name, true
}

// isNotFound reports whether err, from opening a page file, means that the
// request names no file: one that does not exist, a file used as a folder
// (index.html/x), or a name over the file system's length limit. A client
// can cause these at will, so they get 404 and not a logged server error.
func isNotFound(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid) ||
		errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ENAMETOOLONG)
}

func (h *demoHandler) readFile(name string) ([]byte, fs.FileInfo, error) {
	f, err := h.site.Open(name)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil || info.IsDir() {
		return nil, info, err
	}
	data, err := io.ReadAll(f)
	return data, info, err
}

// etag returns the ETag of one version of a file, computing it once.
func (h *demoHandler) etag(name string, info fs.FileInfo, data []byte) string {
	key := etagKey{name: name, size: info.Size(), modTime: info.ModTime()}
	h.etagsMu.Lock()
	defer h.etagsMu.Unlock()
	tag, ok := h.etags[key]
	if !ok {
		tag = etagOf(data)
		h.etags[key] = tag
	}
	return tag
}

// etagOf returns a strong ETag: the quoted first 32 hex digits of the
// content's SHA-256.
func etagOf(data []byte) string {
	sum := sha256.Sum256(data)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// requireLoopbackHost rejects with 421 Misdirected Request a request whose
// Host header names anything but localhost or a loopback IP address, and
// passes the others to next. A server on the loopback interface uses it
// against DNS rebinding: a page of another origin that points its own
// name at 127.0.0.1 sends that name as Host, so it cannot read the served
// files. Rejections are logged at most clientErrorBurst times per
// clientErrorWindow.
func requireLoopbackHost(next http.Handler, logger *slog.Logger) http.Handler {
	limiter := &logLimiter{burst: clientErrorBurst, window: clientErrorWindow, now: time.Now}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isLoopbackHost(r.Host) {
			next.ServeHTTP(w, r)
			return
		}
		if allowed, _ := limiter.allow(); allowed {
			logger.Info("request for another host rejected", "host", loggedPath(r.Host),
				"path", loggedPath(r.URL.Path), "remote", r.RemoteAddr)
		}
		http.Error(w, fmt.Sprintf("misdirected request: this server responds to localhost, 127.0.0.1 and [::1] only, not to Host %q: open the URL that serve printed",
			loggedPath(r.Host)), http.StatusMisdirectedRequest)
	})
}

// isLoopbackHost reports whether the Host header value hostport, with or
// without a port, is localhost or a loopback IP address.
func isLoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
