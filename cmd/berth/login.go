package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-containers/berth/image/remote"
)

// registryOptions reads the global registry flags and, on commands that
// have it, --tls-verify.
func registryOptions(cmd *cobra.Command) (remote.Options, error) {
	opts := remote.Options{AuthFile: storeFlags.authFile, InsecureRegistries: storeFlags.insecure}
	if cmd.Flags().Lookup("tls-verify") != nil {
		verify, err := cmd.Flags().GetBool("tls-verify")
		if err != nil {
			return opts, fmt.Errorf("--tls-verify: %w", err)
		}
		opts.InsecureSkipVerify = !verify
	}
	return opts, nil
}

func newLoginCmd() *cobra.Command {
	var user, password string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Log in to a registry (docker.io by default)",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			if password != "" && passwordStdin {
				return fmt.Errorf("--password and --password-stdin are mutually exclusive")
			}
			if passwordStdin {
				if user == "" {
					return fmt.Errorf("must provide --username with --password-stdin")
				}
				b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), 64<<10))
				if err != nil {
					return fmt.Errorf("read password: %w", err)
				}
				password = strings.TrimRight(string(b), "\r\n")
			}
			if err := promptCredentials(cmd, &user, &password); err != nil {
				return err
			}
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			if err := e.Login(cmd.Context(), server, user, password); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Login Succeeded")
			return nil
		},
	}
	cmd.Flags().StringVarP(&user, "username", "u", "", "user name")
	cmd.Flags().StringVarP(&password, "password", "p", "", "password (prefer --password-stdin)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin")
	addTLSFlag(cmd)
	return cmd
}

// promptCredentials asks on the terminal for what the flags left out.
func promptCredentials(cmd *cobra.Command, user, password *string) error {
	if *user != "" && *password != "" {
		return nil
	}
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return fmt.Errorf("username and password required: use -u and --password-stdin when not on a terminal")
	}
	if *user == "" {
		fmt.Fprint(cmd.ErrOrStderr(), "Username: ")
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil {
			return fmt.Errorf("read username: %w", err)
		}
		*user = strings.TrimSpace(line)
	}
	if *password == "" {
		fmt.Fprint(cmd.ErrOrStderr(), "Password: ")
		b, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return fmt.Errorf("read password: %w", err)
		}
		*password = string(b)
	}
	return nil
}

func newLogoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry (docker.io by default)",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) == 1 {
				server = args[0]
			}
			e, err := openEngine(cmd)
			if err != nil {
				return err
			}
			if err := e.Logout(cmd.Context(), server); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Removing login credentials for %s\n", displayServer(server))
			return nil
		},
	}
}

func displayServer(s string) string {
	if s == "" {
		return "https://index.docker.io/v1/"
	}
	return s
}
