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

apt_first() {
    # apt_first CANDIDATE...: the first package name the distribution has (nginx-light on
    # Debian 12; newer releases name it nginx)
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if [ -z "$apt_updated" ] && command -v apt-get >/dev/null 2>&1; then
        $sudo apt-get update -qq >/dev/null 2>&1 || true  # runs in $(...): output is the name
    fi
    local name
    for name in "$@"; do
        if apt-cache show "$name" >/dev/null 2>&1; then
            echo "$name"
            return
        fi
    done
    echo "$1"
}
