package emulator

import (
	"net/http"
)

// KMSVersion is the KMS API version whose GetSecretValue the emulator serves, so that the
// Function Compute secrets path (shared/kmssecrets) runs end to end against it with the
// official SDK. Calls are signed and checked exactly as Live calls are.
const KMSVersion = "2016-01-20"

// kms answers a KMS call: GetSecretValue of the seed's secrets and Options.Secrets, in the
// documented response shape.
func (s *Server) kms(req *request) (map[string]any, *apiError) {
	switch req.action {
	case "GetSecretValue":
	case "":
		return nil, fail(http.StatusBadRequest, "MissingParameter", "The input parameter \"Action\" that is mandatory for processing this request is not supplied.")
	default:
		return nil, fail(http.StatusNotFound, "InvalidAction.NotFound", "Specified api is not found, please check your url and method.")
	}
	name := req.params.Get("SecretName")
	if name == "" {
		return nil, fail(http.StatusBadRequest, "MissingParameter", "The input parameter \"SecretName\" that is mandatory for processing this request is not supplied.")
	}
	s.mu.Lock()
	data, ok := s.secrets[name]
	s.mu.Unlock()
	if !ok {
		return nil, fail(http.StatusNotFound, "Forbidden.ResourceNotFound", "The resource you requested is not found.")
	}
	return map[string]any{
		"SecretName":     name,
		"SecretData":     data,
		"SecretDataType": "text",
		"SecretType":     "Generic",
		"VersionId":      "v1",
		"VersionStages":  map[string]any{"VersionStage": []string{"ACSCurrent"}},
		"CreateTime":     "2026-11-24T08:00:00Z",
	}, nil
}
