// istio-oracle runs istiod's own config generation in memory and prints what it would send
// each proxy: the reference that local mode's translator (mesh/envoy) is compared with in
// tests/conformance.
//
// Input (stdin, JSON): a list of cases, each
//
//	{"name": "...", "config": "<Istio YAML>", "kube": "<Kubernetes YAML: Services, Pods, ...>",
//	 "mesh": "<MeshConfig YAML>", "proxies": [{"name": "...", "type": "sidecar"|"router",
//	 "namespace": "...", "ip": "...", "labels": {...}, "istioVersion": "1.31.0"}]}
//
// Output (JSON, into the file named by the only argument; istiod logs to stdout): a list of
// results, each {"name", "error"}, {"name", "rejected": [what istio's validation refused]} or
// {"name", "proxies":
// {"<proxy>": {"clusters": [...], "listeners": [...], "routes": [...]}}}, every resource
// rendered with protojson (Any fields expanded, field names in proto form). PILOT_* settings
// come from the environment, as istiod reads them.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/config"
	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/test"
)

type proxySpec struct {
	Name         string            `json:"name"`
	Type         string            `json:"type"`
	Namespace    string            `json:"namespace"`
	IP           string            `json:"ip"`
	Labels       map[string]string `json:"labels"`
	IstioVersion string            `json:"istioVersion"`
}

type caseSpec struct {
	Name    string      `json:"name"`
	Config  string      `json:"config"`
	Kube    string      `json:"kube"`
	Mesh    string      `json:"mesh"`
	Proxies []proxySpec `json:"proxies"`
}

type proxyOutput struct {
	Clusters  []json.RawMessage `json:"clusters"`
	Listeners []json.RawMessage `json:"listeners"`
	Routes    []json.RawMessage `json:"routes"`
}

// rejection is what istio's validation (the webhook, `istioctl validate`) says of one resource.
type rejection struct {
	Document string `json:"document"`
	Error    string `json:"error"`
}

type caseResult struct {
	Name     string                 `json:"name"`
	Error    string                 `json:"error,omitempty"`
	Rejected []rejection            `json:"rejected,omitempty"`
	Proxies  map[string]proxyOutput `json:"proxies,omitempty"`
}

var marshal = protojson.MarshalOptions{UseProtoNames: true}

func render[T proto.Message](items []T) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, 0, len(items))
	for _, item := range items {
		raw, err := marshal.Marshal(item)
		if err != nil {
			return nil, err
		}
		out = append(out, raw)
	}
	return out, nil
}

func proxyType(name string) (model.NodeType, error) {
	switch name {
	case "sidecar", "":
		return model.SidecarProxy, nil
	case "router":
		return model.Router, nil
	}
	return "", fmt.Errorf("unknown proxy type %q", name)
}

// generate runs one case in a fresh fake istiod; a Fatal inside it becomes the case's error.
func generate(c caseSpec) caseResult {
	result := caseResult{Name: c.Name, Proxies: map[string]proxyOutput{}}
	meshConfig, err := mesh.ApplyMeshConfigDefaults(c.Mesh)
	if err != nil {
		result.Error = "mesh config: " + err.Error()
		return result
	}
	// One document at a time: crd.ParseInputs decodes and validates as the API server and
	// the webhook do, and a refusal must name the document it refuses.
	var configs []config.Config
	for _, doc := range strings.Split(c.Config, "\n---\n") {
		// A document istio cannot decode (two kinds in a oneof, an unknown field) or that its
		// validation refuses is a refusal of that document, as the API server's would be.
		parsed, _, err := crd.ParseInputs(doc)
		if err != nil {
			result.Rejected = append(result.Rejected, rejection{Document: doc, Error: err.Error()})
			continue
		}
		configs = append(configs, parsed...)
	}
	if len(result.Rejected) > 0 {
		// The API server would not have stored them: nothing to generate.
		result.Proxies = nil
		return result
	}
	for i := range configs {
		// As the Kubernetes config store sets it: short hosts ("order-service") resolve to
		// <name>.<namespace>.svc.cluster.local, not to <name>.<namespace>.
		configs[i].Domain = "cluster.local"
	}
	err = test.Wrap(func(t test.Failer) {
		server := xds.NewFakeDiscoveryServer(t, xds.FakeOptions{
			Configs:                configs,
			KubernetesObjectString: c.Kube,
			MeshConfig:             meshConfig,
		})
		for _, spec := range c.Proxies {
			kind, err := proxyType(spec.Type)
			if err != nil {
				t.Fatal(err)
			}
			version := spec.IstioVersion
			if version == "" {
				version = "1.31.0"
			}
			proxy := server.SetupProxy(&model.Proxy{
				Type:            kind,
				ID:              spec.Name + "." + spec.Namespace,
				IPAddresses:     []string{spec.IP},
				ConfigNamespace: spec.Namespace,
				Labels:          spec.Labels,
				Metadata: &model.NodeMetadata{
					Labels:       spec.Labels,
					Namespace:    spec.Namespace,
					IstioVersion: version,
				},
			})
			listeners := server.Listeners(proxy)
			rendered := proxyOutput{}
			if rendered.Clusters, err = render(server.Clusters(proxy)); err != nil {
				t.Fatal(err)
			}
			if rendered.Listeners, err = render(listeners); err != nil {
				t.Fatal(err)
			}
			if rendered.Routes, err = render(server.RoutesFromListeners(proxy, listeners)); err != nil {
				t.Fatal(err)
			}
			result.Proxies[spec.Name] = rendered
		}
	})
	if err != nil {
		result.Error = err.Error()
		result.Proxies = nil
	}
	return result
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: istio-oracle OUTPUT.json < cases.json")
		os.Exit(2)
	}
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "istio-oracle: reading stdin:", err)
		os.Exit(2)
	}
	var cases []caseSpec
	if err := json.Unmarshal(input, &cases); err != nil {
		fmt.Fprintln(os.Stderr, "istio-oracle: input is not a JSON list of cases:", err)
		os.Exit(2)
	}
	results := make([]caseResult, 0, len(cases))
	for _, c := range cases {
		results = append(results, generate(c))
	}
	out, err := json.Marshal(results)
	if err == nil {
		err = os.WriteFile(os.Args[1], out, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "istio-oracle: writing results:", err)
		os.Exit(2)
	}
}
