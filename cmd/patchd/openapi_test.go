package main

import (
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
)

// The validator lives in this package's tests only, not in
// internal/server's: .ci/run fuzzes internal/server, and a fuzzing build
// instruments every package its test binary links, which made
// libopenapi's compile take minutes of the CI budget.

// validateOpenAPI fails unless doc is a valid OpenAPI 3.1 document: it is
// checked against the OpenAPI 3.1 schema by a JSON Schema validator
// (libopenapi-validator's ValidateDocument), and every $ref resolves.
func validateOpenAPI(t *testing.T, doc []byte) {
	t.Helper()
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		t.Fatalf("parse the OpenAPI document: %v", err)
	}
	if d.GetVersion() != "3.1.0" {
		t.Errorf("openapi %q, want 3.1.0", d.GetVersion())
	}
	if _, err := d.BuildV3Model(); err != nil {
		t.Errorf("build the OpenAPI 3.1 model: %v", err)
	}
	v, errs := validator.NewValidator(d)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	ok, verrs := v.ValidateDocument()
	for _, e := range verrs {
		t.Errorf("invalid OpenAPI: %s: %s", e.Message, e.Reason)
		for _, f := range e.SchemaValidationErrors {
			t.Errorf("  at %s (%s): %s", f.FieldPath, f.KeywordLocation, f.Reason)
		}
	}
	if !ok && len(verrs) == 0 {
		t.Error("invalid OpenAPI, without a reason")
	}
}
