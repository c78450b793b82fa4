package iam

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	iamsdk "github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/smithy-go"
)

const thumb1 = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280"

func TestOIDCProviderLifecycle(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c := e.client

	created, err := c.CreateOpenIDConnectProvider(ctx, &iamsdk.CreateOpenIDConnectProviderInput{
		Url: aws.String("https://oidc.example.com/id/ABC"), ClientIDList: []string{"sts.amazonaws.com", "sts.amazonaws.com"},
		ThumbprintList: []string{thumb1}, Tags: []types.Tag{{Key: aws.String("cluster"), Value: aws.String("prod")}},
	})
	mustNoErr(t, err)
	arn := aws.ToString(created.OpenIDConnectProviderArn)
	if arn != "arn:aws:iam::123456789012:oidc-provider/oidc.example.com/id/ABC" || len(created.Tags) != 1 {
		t.Fatalf("created %+v", created)
	}
	_, err = c.CreateOpenIDConnectProvider(ctx, &iamsdk.CreateOpenIDConnectProviderInput{Url: aws.String("https://OIDC.example.com/id/abc"), ThumbprintList: []string{thumb1}})
	wantAPIError[*types.EntityAlreadyExistsException](t, err, "EntityAlreadyExists")

	got, err := c.GetOpenIDConnectProvider(ctx, &iamsdk.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
	mustNoErr(t, err)
	if aws.ToString(got.Url) != "oidc.example.com/id/ABC" || fmt.Sprint(got.ClientIDList) != "[sts.amazonaws.com]" ||
		fmt.Sprint(got.ThumbprintList) != "["+thumb1+"]" || got.CreateDate == nil || len(got.Tags) != 1 {
		t.Fatalf("GetOpenIDConnectProvider %+v", got)
	}
	byIssuer, err := e.ents.OIDCProviderByIssuer(ctx, "https://oidc.example.com/id/ABC")
	mustNoErr(t, err)
	if byIssuer.ARN != arn {
		t.Fatalf("OIDCProviderByIssuer = %+v", byIssuer)
	}

	_, err = c.AddClientIDToOpenIDConnectProvider(ctx, &iamsdk.AddClientIDToOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn), ClientID: aws.String("my-app")})
	mustNoErr(t, err)
	_, err = c.AddClientIDToOpenIDConnectProvider(ctx, &iamsdk.AddClientIDToOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn), ClientID: aws.String("my-app")})
	mustNoErr(t, err)
	_, err = c.RemoveClientIDFromOpenIDConnectProvider(ctx, &iamsdk.RemoveClientIDFromOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn), ClientID: aws.String("sts.amazonaws.com")})
	mustNoErr(t, err)
	thumb2 := strings.ToUpper(strings.Repeat("ab", 20))
	_, err = c.UpdateOpenIDConnectProviderThumbprint(ctx, &iamsdk.UpdateOpenIDConnectProviderThumbprintInput{OpenIDConnectProviderArn: aws.String(arn), ThumbprintList: []string{thumb2}})
	mustNoErr(t, err)
	got, err = c.GetOpenIDConnectProvider(ctx, &iamsdk.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
	mustNoErr(t, err)
	if fmt.Sprint(got.ClientIDList) != "[my-app]" || fmt.Sprint(got.ThumbprintList) != "["+thumb2+"]" {
		t.Fatalf("after updates %+v", got)
	}

	_, err = c.TagOpenIDConnectProvider(ctx, &iamsdk.TagOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn), Tags: []types.Tag{{Key: aws.String("x"), Value: aws.String("y")}}})
	mustNoErr(t, err)
	_, err = c.UntagOpenIDConnectProvider(ctx, &iamsdk.UntagOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn), TagKeys: []string{"cluster"}})
	mustNoErr(t, err)
	tags, err := c.ListOpenIDConnectProviderTags(ctx, &iamsdk.ListOpenIDConnectProviderTagsInput{OpenIDConnectProviderArn: aws.String(arn)})
	mustNoErr(t, err)
	if fmt.Sprint(tagPairs(tags.Tags)) != "[x=y]" {
		t.Fatalf("tags %v", tagPairs(tags.Tags))
	}

	// A provider with neither client ids nor thumbprints, on a port.
	second, err := c.CreateOpenIDConnectProvider(ctx, &iamsdk.CreateOpenIDConnectProviderInput{Url: aws.String("https://127.0.0.1:8443")})
	mustNoErr(t, err)
	listed, err := c.ListOpenIDConnectProviders(ctx, &iamsdk.ListOpenIDConnectProvidersInput{})
	mustNoErr(t, err)
	var arns []string
	for _, p := range listed.OpenIDConnectProviderList {
		arns = append(arns, aws.ToString(p.Arn))
	}
	if fmt.Sprint(arns) != fmt.Sprint([]string{aws.ToString(second.OpenIDConnectProviderArn), arn}) {
		t.Fatalf("listed %v", arns)
	}

	_, err = c.DeleteOpenIDConnectProvider(ctx, &iamsdk.DeleteOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
	mustNoErr(t, err)
	_, err = c.GetOpenIDConnectProvider(ctx, &iamsdk.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
	wantAPIError[*types.NoSuchEntityException](t, err, "NoSuchEntity")
	_, err = c.DeleteOpenIDConnectProvider(ctx, &iamsdk.DeleteOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn)})
	wantAPIError[*types.NoSuchEntityException](t, err, "NoSuchEntity")
	_, err = c.AddClientIDToOpenIDConnectProvider(ctx, &iamsdk.AddClientIDToOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String(arn), ClientID: aws.String("x")})
	wantAPIError[*types.NoSuchEntityException](t, err, "NoSuchEntity")
}

func TestOIDCProviderErrors(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	c := e.client
	create := func(u string, thumbs []string) error {
		_, err := c.CreateOpenIDConnectProvider(ctx, &iamsdk.CreateOpenIDConnectProviderInput{Url: aws.String(u), ThumbprintList: thumbs})
		return err
	}
	tests := []struct {
		name   string
		url    string
		thumbs []string
		code   string
	}{
		{"http", "http://issuer.example.com", nil, "InvalidInput"},
		{"no scheme", "issuer.example.com", nil, "InvalidInput"},
		{"query", "https://issuer.example.com/?a=b", nil, "InvalidInput"},
		{"fragment", "https://issuer.example.com/#f", nil, "InvalidInput"},
		{"user info", "https://u:p@issuer.example.com", nil, "InvalidInput"},
		{"no host", "https:///path", nil, "InvalidInput"},
		{"url too long", "https://" + strings.Repeat("a", 260) + ".com", nil, "ValidationError"},
		{"short thumbprint", "https://a.example.com", []string{"abc"}, "ValidationError"},
		{"non-hex thumbprint", "https://a.example.com", []string{strings.Repeat("z", 40)}, "ValidationError"},
		{"six thumbprints", "https://a.example.com", []string{thumb1, thumb1, thumb1, thumb1, thumb1, thumb1}, "ValidationError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := create(tt.url, tt.thumbs)
			if tt.code == "InvalidInput" {
				wantAPIError[*types.InvalidInputException](t, err, tt.code)
			} else {
				wantAPIError[smithy.APIError](t, err, tt.code)
			}
		})
	}
	_, err := c.GetOpenIDConnectProvider(ctx, &iamsdk.GetOpenIDConnectProviderInput{OpenIDConnectProviderArn: aws.String("arn:aws:iam::123456789012:role/not-a-provider")})
	wantAPIError[*types.InvalidInputException](t, err, "InvalidInput")
	listed, err := c.ListOpenIDConnectProviders(ctx, &iamsdk.ListOpenIDConnectProvidersInput{})
	mustNoErr(t, err)
	if len(listed.OpenIDConnectProviderList) != 0 {
		t.Fatalf("refused creates left providers: %+v", listed.OpenIDConnectProviderList)
	}
}
