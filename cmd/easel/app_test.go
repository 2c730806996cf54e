package main

import "testing"

// With Cognito's hosted UI, the web app is given the user pool's endpoints
// as Cognito's discovery document names them, so it signs in without
// fetching that document.
func TestCognitoEndpoints(t *testing.T) {
	got := cognitoEndpoints("https://cognito-idp.ap-northeast-2.amazonaws.com/ap-northeast-2_abc/", "https://auth.easel.example/")
	want := map[string]string{
		"issuer":                 "https://cognito-idp.ap-northeast-2.amazonaws.com/ap-northeast-2_abc",
		"jwks_uri":               "https://cognito-idp.ap-northeast-2.amazonaws.com/ap-northeast-2_abc/.well-known/jwks.json",
		"authorization_endpoint": "https://auth.easel.example/oauth2/authorize",
		"token_endpoint":         "https://auth.easel.example/oauth2/token",
		"end_session_endpoint":   "https://auth.easel.example/logout",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}
