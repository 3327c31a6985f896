package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// NewClient returns a DynamoDB client with the SDK's default configuration, as Open uses it:
// the standard credential chain, AWS_REGION, and AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL.
func NewClient(ctx context.Context) (*dynamodb.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("dynamodb: load AWS configuration: %w", err)
	}
	return dynamodb.NewFromConfig(cfg), nil
}

// Setup is what Init found and did.
type Setup struct {
	// Created: the table did not exist and Init created it.
	Created bool
	// TTL: the table's time to live is on the ttl attribute (enabled now or before), so DynamoDB
	// removes expired items by itself.
	TTL bool
	// Note, when set, says what Init left undone and why the store works without it.
	Note string
}

// wantSchema is the key schema of the table layout, in describeSchema's form.
const wantSchema = "HASH PK (S), RANGE SK (S)"

// Init makes table ready for the store: it creates it when missing (on-demand billing, PK and
// SK as in the package doc), waits until it is active, and turns on its TTL on the ttl
// attribute. On a table that exists with this key schema it changes nothing but a TTL that is
// off; on one with another key schema, or TTL on another attribute, it returns an error naming
// the difference and touches nothing.
//
// A server without TTL (dynalite answers UpdateTimeToLive with UnknownOperationException) is not
// an error: TTL only cleans up, expiry is checked in code, so Init skips it and says so in
// Setup.Note. Expired items then stay in the table until overwritten or deleted.
func Init(ctx context.Context, client *dynamodb.Client, table string) (Setup, error) {
	var setup Setup
	desc, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	var missing *types.ResourceNotFoundException
	switch {
	case errors.As(err, &missing):
		_, err = client.CreateTable(ctx, &dynamodb.CreateTableInput{
			TableName:   aws.String(table),
			BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{
				{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS},
				{AttributeName: aws.String(attrSK), AttributeType: types.ScalarAttributeTypeS},
			},
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
			},
		})
		var inUse *types.ResourceInUseException
		switch {
		case errors.As(err, &inUse):
			// Another Init created it in between: check what it made like any existing table.
		case err != nil:
			return setup, fmt.Errorf("dynamodb: create table %s: %w", table, err)
		default:
			setup.Created = true
		}
		desc, err = client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err != nil {
			return setup, fmt.Errorf("dynamodb: describe table %s: %w", table, err)
		}
	case err != nil:
		return setup, fmt.Errorf("dynamodb: describe table %s: %w", table, err)
	}
	if got := describeSchema(desc.Table); got != wantSchema {
		return setup, fmt.Errorf("dynamodb: table %s has key schema %s; the store needs %s", table, got, wantSchema)
	}
	if desc.Table.TableStatus != types.TableStatusActive {
		w := dynamodb.NewTableExistsWaiter(client, func(o *dynamodb.TableExistsWaiterOptions) {
			o.MinDelay, o.MaxDelay = 200*time.Millisecond, 5*time.Second
		})
		if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, 5*time.Minute); err != nil {
			return setup, fmt.Errorf("dynamodb: wait for table %s to become active: %w", table, err)
		}
	}
	if err := enableTTL(ctx, client, table, &setup); err != nil {
		return setup, err
	}
	return setup, nil
}

// enableTTL turns the table's TTL on for the ttl attribute, unless it already is.
func enableTTL(ctx context.Context, client *dynamodb.Client, table string, setup *Setup) error {
	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(table)})
	if unsupported(err) {
		setup.Note = noTTL
		return nil
	}
	if err != nil {
		return fmt.Errorf("dynamodb: describe time to live of %s: %w", table, err)
	}
	if d := ttl.TimeToLiveDescription; d != nil {
		switch d.TimeToLiveStatus {
		case types.TimeToLiveStatusEnabled, types.TimeToLiveStatusEnabling:
			if name := aws.ToString(d.AttributeName); name != attrTTL {
				return fmt.Errorf("dynamodb: table %s has time to live on attribute %q; the store writes it on %q", table, name, attrTTL)
			}
			setup.TTL = true
			return nil
		case types.TimeToLiveStatusDisabling:
			return fmt.Errorf("dynamodb: table %s is disabling its time to live; run again when that is done (DynamoDB allows it about an hour later)", table)
		}
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(table),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(attrTTL),
			Enabled:       aws.Bool(true),
		},
	})
	if unsupported(err) {
		setup.Note = noTTL
		return nil
	}
	if err != nil {
		return fmt.Errorf("dynamodb: enable time to live on %s.%s: %w", table, attrTTL, err)
	}
	setup.TTL = true
	return nil
}

const noTTL = "this DynamoDB server does not support time to live (UpdateTimeToLive is an unknown operation, as on dynalite): expired items are hidden by the store but stay in the table until overwritten or deleted"

// unsupported reports an operation the server does not implement.
func unsupported(err error) bool {
	// smithy.APIError's method, matched structurally: the store needs nothing else of smithy.
	var api interface{ ErrorCode() string }
	return errors.As(err, &api) && api.ErrorCode() == "UnknownOperationException"
}

// describeSchema renders a table's key schema with the attributes' types, e.g.
// "HASH PK (S), RANGE SK (S)".
func describeSchema(t *types.TableDescription) string {
	if t == nil {
		return "(none)"
	}
	typ := map[string]types.ScalarAttributeType{}
	for _, a := range t.AttributeDefinitions {
		typ[aws.ToString(a.AttributeName)] = a.AttributeType
	}
	var parts []string
	for _, k := range t.KeySchema {
		name := aws.ToString(k.AttributeName)
		parts = append(parts, fmt.Sprintf("%s %s (%s)", k.KeyType, name, typ[name]))
	}
	return strings.Join(parts, ", ")
}
