package server

import (
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
)

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

// TestOpenAPIValid: the document a real server serves, with every door on
// and a --public-url, is valid OpenAPI 3.1 (issue 12: a GPT action imports
// it).
func TestOpenAPIValid(t *testing.T) {
	for name, mod := range map[string]func(*Options){
		"listening address": nil,
		"public URL":        func(o *Options) { o.PublicURL = "https://patchd.example.com" },
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, mod)
			rec := f.get("/openapi.json")
			if rec.Code != 200 {
				t.Fatalf("GET /openapi.json: %d", rec.Code)
			}
			validateOpenAPI(t, rec.Body.Bytes())
		})
	}
}
