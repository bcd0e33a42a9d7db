# Shared by the set-up scripts (sourced): installing Debian/Ubuntu packages as root or with sudo.

apt_updated=""

apt_install() {
    # apt_install PACKAGE...: install what is missing from the distribution's packages
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "need these packages, and root or sudo to install them: $*" >&2
            exit 1
        fi
        sudo="sudo"
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "need these packages (this script installs them on Debian and Ubuntu): $*" >&2
        exit 1
    fi
    echo "installing from the distribution's packages: $*"
    if [ -z "$apt_updated" ]; then
        $sudo apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" \
        >/dev/null
}
