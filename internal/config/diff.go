package config

import (
	"reflect"
	"strings"
)

// Changed lists the keys ("section.key", as in the file) whose values
// differ between two configurations, in file order.
func Changed(old, new *Config) []string {
	var keys []string
	ov, nv := reflect.ValueOf(old).Elem(), reflect.ValueOf(new).Elem()
	for i := range ov.NumField() {
		section := strings.Split(ov.Type().Field(i).Tag.Get("toml"), ",")[0]
		os, ns := ov.Field(i), nv.Field(i)
		for j := range os.NumField() {
			if !reflect.DeepEqual(os.Field(j).Interface(), ns.Field(j).Interface()) {
				keys = append(keys, section+"."+strings.Split(os.Type().Field(j).Tag.Get("toml"), ",")[0])
			}
		}
	}
	return keys
}
