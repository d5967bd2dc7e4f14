; Inno Setup 6 script: the Windows installer of Backstory Desktop, made from the
; PyInstaller bundle that `python packaging\build.py` leaves in dist\backstory-desktop\.
;
; Compile it on the Windows machine that built the bundle, from the top of the checkout:
;
;     iscc /DAppVersion=0.1.0 packaging\windows\backstory-desktop.iss
;
; AppVersion must be the version in backstory_desktop\__init__.py, because the
; compiler cannot run Python to read it. The installer is written to
; dist\backstory-desktop-VERSION-windows-amd64-setup.exe.
;
; To sign the installer and its uninstaller while compiling, define a Sign Tool
; named backstorysign and add /DSign (packaging\README.md has the full command):
;
;     iscc "/Sbackstorysign=signtool sign /sha1 THUMBPRINT /fd SHA256 /tr TSA_URL /td SHA256 $f" ^
;          /DSign /DAppVersion=0.1.0 packaging\windows\backstory-desktop.iss
;
; The two executables inside the bundle are signed before this, because the
; installer packs the files as they are.
;
; NOTE: this script has not been compiled yet: it was written on Linux from the
; Inno Setup 6 documentation. Compile it once and install, upgrade and uninstall
; on a Windows test machine before the first release.

#ifndef AppVersion
  #error AppVersion is not defined: pass it to the compiler, e.g. iscc /DAppVersion=0.1.0 packaging\windows\backstory-desktop.iss
#endif

; The x64compatible architecture identifier (below) is new in Inno Setup 6.3.
#if VER < EncodeVer(6, 3, 0)
  #error This script needs Inno Setup 6.3 or later, because it uses x64compatible: update Inno Setup
#endif

#define AppName "Backstory Desktop"
#define AppPublisher "Backstory"
; The windowed executable: it opens the wizard without a console window.
#define AppExeName "Backstory Desktop.exe"
; Paths are relative to this script's folder, packaging\windows\.
#define RepoRoot AddBackslash(SourcePath) + "..\.."
#define BundleDir RepoRoot + "\dist\backstory-desktop"

#if !FileExists(AddBackslash(BundleDir) + AppExeName)
  #error dist\backstory-desktop\Backstory Desktop.exe is missing: run python packaging\build.py on this machine first
#endif

[Setup]
; AppId identifies the product to Windows: upgrades and the uninstaller find an
; earlier install by it. Never change it, and never reuse it for another product.
; The first brace is doubled because a single one starts an Inno Setup constant.
AppId={{367636B2-6731-4B47-BB05-55E24073855E}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher={#AppPublisher}
AppCopyright=Copyright Backstory. Licensed under the Apache License 2.0.

; Installs for the current user by default, into %LOCALAPPDATA%\Programs, with no
; administrator rights. The first page offers "Install for all users" instead,
; into Program Files, which asks for elevation. /CURRENTUSER or /ALLUSERS on the
; command line chooses without the page, for unattended installs.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
DefaultDirName={autopf}\{#AppName}
; The Start menu shortcut goes straight into Programs, with no folder to pick.
DisableProgramGroupPage=yes

; The bundle is built with 64-bit Python (python.org's 64-bit installer), so Setup
; does not run on 32-bit Windows and installs into the 64-bit Program Files.
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible

SetupIconFile={#RepoRoot}\resources\icons\backstory-desktop.ico
UninstallDisplayIcon={app}\{#AppExeName}
UninstallDisplayName={#AppName}
WizardStyle=modern
Compression=lzma2
SolidCompression=yes
OutputDir={#RepoRoot}\dist
OutputBaseFilename=backstory-desktop-{#AppVersion}-windows-amd64-setup

#ifdef Sign
; Signs the installer and the uninstaller it writes, through the Sign Tool that
; the /Sbackstorysign=... option of iscc defines.
SignTool=backstorysign
#endif

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
; The whole bundle: both executables, "Backstory Desktop.exe" (windowed) and
; backstory-desktop.exe (the command line), and the _internal folder they load.
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\{#AppExeName}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\{#AppExeName}"; Tasks: desktopicon

[Run]
Filename: "{app}\{#AppExeName}"; Description: "{cm:LaunchProgram,{#StringChange(AppName, '&', '&&')}}"; Flags: nowait postinstall skipifsilent

; The uninstaller removes only what this installer copied. The app's profiles,
; practice orgs, logs and sync journal live in %LOCALAPPDATA%\Backstory\ and are
; kept, as are the sign-ins in Windows Credential Manager.
