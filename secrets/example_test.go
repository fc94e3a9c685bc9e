package secrets_test

import (
	"fmt"
	"os"

	"github.com/refline/refline/secrets"
)

// A deploy decrypts ENV's secrets, parses them, and masks their values in
// everything the deploy prints.
func Example() {
	vars, err := secrets.ParseDotenv([]byte(`
# production credentials
DB_PASSWORD='correct horse battery staple'
export API_TOKEN="tok_4f9a\$x"   # rotated 2024-05
PORT=443
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	m := secrets.NewMasker(vars)
	fmt.Println("not masked:", m.ShortKeys())

	log := m.Writer(os.Stdout)
	fmt.Fprintln(log, "connecting with correct horse battery staple")
	fmt.Fprint(log, "token=tok_4f")
	fmt.Fprintln(log, "9a$x port=443")
	log.Close()
	// Output:
	// not masked: [PORT]
	// connecting with ***
	// token=*** port=443
}

func ExampleFormatDotenv() {
	os.Stdout.Write(secrets.FormatDotenv([]secrets.Var{
		{Key: "PLAIN", Value: "abc-123"},
		{Key: "SPACES", Value: "two words"},
		{Key: "PEM", Value: "-----BEGIN X-----\nAAAA\n-----END X-----"},
		{Key: "QUOTE", Value: "it's $5"},
	}))
	// Output:
	// PLAIN=abc-123
	// SPACES='two words'
	// PEM='-----BEGIN X-----
	// AAAA
	// -----END X-----'
	// QUOTE="it's \$5"
}
