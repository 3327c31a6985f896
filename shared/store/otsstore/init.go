package otsstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aliyun/aliyun-tablestore-go-sdk/tablestore"
)

// TimeToLive is the table's TTL: -1, none. Expiry is decided in code (see the package doc),
// because a TTL would also delete the records that never expire.
const TimeToLive = -1

// Init creates the table of opts (Namespace is not needed) with the layout's primary key, one
// version per column and no TTL. A table that already has that primary key is left as it is,
// so Init may run on every deployment; one with another primary key, or with a TTL, is an
// error naming the difference, since this package cannot use it safely. A new table may take a
// few seconds to load before it serves rows; the SDK waits out OTSTableNotReady on reads, and
// writes retry it.
func Init(ctx context.Context, opts Options) error {
	_, err := Ensure(ctx, opts)
	return err
}

// Ensure is Init that also reports whether it created the table (false: it was there already,
// with the layout's primary key and no TTL).
func Ensure(ctx context.Context, opts Options) (created bool, _ error) {
	if err := opts.check(false); err != nil {
		return false, err
	}
	s := newStore(opts)
	defer s.Close()
	c, err := s.client(ctx, false)
	if err != nil {
		return false, err
	}
	desc, err := c.DescribeTable(&tablestore.DescribeTableRequest{TableName: opts.Table})
	if isCode(err, codeObjectNotExist) {
		meta := &tablestore.TableMeta{TableName: opts.Table}
		meta.AddPrimaryKeyColumn(colPK, tablestore.PrimaryKeyType_STRING)
		meta.AddPrimaryKeyColumn(colSK, tablestore.PrimaryKeyType_STRING)
		_, err = c.CreateTable(&tablestore.CreateTableRequest{
			TableMeta:          meta,
			TableOption:        &tablestore.TableOption{TimeToAlive: TimeToLive, MaxVersion: 1},
			ReservedThroughput: &tablestore.ReservedThroughput{},
		})
		if err == nil {
			return true, nil
		}
		if !isCode(err, codeObjectAlreadyExist) {
			return false, fmt.Errorf("otsstore: create table %s in instance %s: %w", opts.Table, opts.Instance, err)
		}
		// Another Init created it in between: check what it made.
		desc, err = c.DescribeTable(&tablestore.DescribeTableRequest{TableName: opts.Table})
	}
	if err != nil {
		return false, fmt.Errorf("otsstore: describe table %s in instance %s: %w", opts.Table, opts.Instance, err)
	}
	return false, checkSchema(opts.Table, desc)
}

// checkSchema compares a table with the layout.
func checkSchema(table string, desc *tablestore.DescribeTableResponse) error {
	var have []string
	if desc.TableMeta != nil {
		for _, pk := range desc.TableMeta.SchemaEntry {
			have = append(have, pkString(pk))
		}
	}
	want := colPK + " STRING, " + colSK + " STRING"
	if got := strings.Join(have, ", "); got != want {
		return fmt.Errorf("otsstore: table %s has the primary key (%s); livepack's layout is (%s): use another table", table, got, want)
	}
	if desc.TableOption != nil && desc.TableOption.TimeToAlive != TimeToLive {
		return fmt.Errorf("otsstore: table %s has a TTL of %d s; livepack keeps records that never expire and needs none (-1): set its TimeToLive to -1", table, desc.TableOption.TimeToAlive)
	}
	return nil
}

func pkString(pk *tablestore.PrimaryKeySchema) string {
	name, typ := "?", "?"
	if pk.Name != nil {
		name = *pk.Name
	}
	if pk.Type != nil {
		switch *pk.Type {
		case tablestore.PrimaryKeyType_STRING:
			typ = "STRING"
		case tablestore.PrimaryKeyType_INTEGER:
			typ = "INTEGER"
		case tablestore.PrimaryKeyType_BINARY:
			typ = "BINARY"
		}
	}
	s := name + " " + typ
	if pk.Option != nil {
		s += " AUTO_INCREMENT"
	}
	return s
}

func isCode(err error, code string) bool {
	var oe *tablestore.OtsError
	return errors.As(err, &oe) && oe.Code == code
}
