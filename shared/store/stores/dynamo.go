//go:build !fc

package stores

import (
	"context"
	"fmt"
	"strings"

	"github.com/aliyun/credentials-go/credentials"

	"github.com/livepack/livepack/shared/store"
	"github.com/livepack/livepack/shared/store/dynamostore"
)

// The DynamoDB backend: in the Lambda artifact and the full build, not in the FC artifact.
func init() { openDynamoDB = openDynamo }

// openDynamo opens dynamodb://TABLE with the AWS SDK's default chain and region.
func openDynamo(ctx context.Context, spec, namespace string, _ credentials.Credential) (store.Store, error) {
	table := strings.TrimPrefix(spec, "dynamodb://")
	if table == "" || strings.ContainsAny(table, "/?#") {
		return nil, fmt.Errorf("stores: state %q: want dynamodb://TABLE", spec)
	}
	return dynamostore.Open(ctx, table, namespace)
}
