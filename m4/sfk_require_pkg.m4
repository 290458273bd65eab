# SFK_REQUIRE_PKG(VARIABLE-PREFIX, MODULES, DEBIAN-PACKAGE)
# -----------------------------------------------------------
# PKG_CHECK_MODULES that stops configure with a message naming the Debian
# package to install.
AC_DEFUN([SFK_REQUIRE_PKG], [
  PKG_CHECK_MODULES([$1], [$2], [],
    [AC_MSG_ERROR([$2 not found: $$1_PKG_ERRORS
Install it with: apt-get install $3])])
])
