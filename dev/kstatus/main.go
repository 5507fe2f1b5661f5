// kstatus reads one Kubernetes object (JSON) on stdin and prints the status that kstatus
// (sigs.k8s.io/cli-utils, the library behind kpt, Config Sync and Flux's health checks)
// computes for it: Current, InProgress, Failed, Terminating or Unknown, with its message.
// The tests use it to prove the LLMDeployment conditions map onto kstatus as documented.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
)

func main() {
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: reading stdin:", err)
		os.Exit(2)
	}
	// Unstructured decoding keeps integers as int64, as a client reading the API would.
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(data); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus: reading the object:", err)
		os.Exit(2)
	}
	res, err := status.Compute(obj)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(2)
	}
	out := map[string]string{"status": string(res.Status), "message": res.Message}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(2)
	}
}
